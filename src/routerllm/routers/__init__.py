"""Routers: text -> (model, confidence). See ``base.Router``; names live in ``routerllm.registry.ROUTERS``."""

from routerllm.routers.base import Router, RoutingDecision, create_router
from routerllm.routers.saved import load_router

__all__ = ["Router", "RoutingDecision", "create_router", "load_router"]
