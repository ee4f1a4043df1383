"""The router a ``RouterLLM`` routes with: the config's (a saved one loaded from
``router.path``, or ``router.name`` built with its options; an error says where in the
config each was set) or one the caller gives (a router, or a registered router's name),
checked against the config's models."""

from __future__ import annotations

import logging

from routerllm.config import AppConfig
from routerllm.exceptions import ConfigError, RouterLLMError, UnknownNameError
from routerllm.registry import ROUTERS
from routerllm.routers.base import Router, check_option_names, create_router
from routerllm.routers.saved import load_router

logger = logging.getLogger(__name__)


def build_router(config: AppConfig) -> Router:
    """The router ``config`` names: the one saved in ``router.path``, else ``router.name``
    built with ``router.options`` and ``router.seed``."""
    settings = config.router
    if settings.path:
        try:
            router = load_router(settings.path, config.models, settings.options)
        except RouterLLMError as e:  # names router.path (and the config file giving it)
            e.args = (f"router.path{f' in {config.source}' if config.source else ''}: {e}",)
            raise
        if "seed" in settings.model_fields_set and settings.seed != router.seed:
            logger.warning(
                "router.seed %d is not used: the router saved in %s draws with the seed it "
                "was saved with, %d (train it again with --seed to change it)",
                settings.seed, settings.path, router.seed,
            )  # fmt: skip
        return router
    if settings.name not in ROUTERS:  # said where it was set: the config's router.name
        where = f"router.name in {config.source}" if config.source else "router.name"
        raise UnknownNameError("router", settings.name, ROUTERS.names(), where)
    try:
        check_option_names(settings.options)
        return create_router(settings.name, config.models, settings.seed, **settings.options)
    except RouterLLMError as e:  # an option's name or value: said where it was set
        if type(e) is not RouterLLMError:  # a missing package or model says so itself
            raise
        e.args = (f"router.options{f' in {config.source}' if config.source else ''}: {e}",)
        raise


def as_router(router: object, config: AppConfig) -> Router:
    """A router given as a router or by its registered name."""
    if isinstance(router, str):
        return create_router(router, config.models, config.router.seed)
    if not isinstance(router, Router):
        raise ConfigError(
            f"router must be a Router or a registered router's name, got {type(router).__name__}"
        )
    configured = [m.name for m in config.models]
    if not set(router.model_names) & set(configured):
        raise ConfigError(
            f"router {router.name!r} routes to {', '.join(router.model_names)}, none of which "
            f"is in this config ({', '.join(configured)}); build it for this config's models"
        )
    return router
