"""Whether a loaded model's weights files were replaced since it loaded them: the
``Backend`` part that tells the manager to load a model again before it next generates,
and the request cache which weights answer (``weights_stamp``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)


class WeightsWatch:
    """A backend's watch on its weights files (``weights_files``: none by default, as
    for a remote model); ``Backend`` gives ``name``, ``loaded`` and ``availability``."""

    if TYPE_CHECKING:

        @property
        def name(self) -> str: ...

        @property
        def loaded(self) -> bool: ...

        def availability(self) -> str | None: ...

    # weights_files() as the model was loaded and their files_stamp then: one attribute,
    # set at once, so that a thread making a cache key never reads one load's files
    # with another's stamp
    _loaded_weights: tuple[list[Path] | None, str | None] = (None, None)
    # the stamp of other files found at their paths since, and why those cannot be
    # loaded (None: they can): asked once per stamp
    _put_off: tuple[str | None, str | None] | None = None

    def weights_files(self) -> list[Path] | None:
        """The files the model's weights are read from here, found without reading them;
        None where nothing here tells (a remote model) or they cannot be found."""
        return None

    def _mapped(self) -> tuple[str, ...]:
        """The endings of the names of its ``weights_files`` that the loaded model maps
        (reads as they are now): "" for every one; none where it maps a file made from them."""
        return ("",)

    def _load_problem(self) -> str | None:
        """Why the files now at its paths fail to load where ``availability`` finds
        nothing against them, read without their weights (llama.cpp's architecture and
        vocabulary); None where they read so far or nothing here tells. Asked once per
        replacement, before the loaded weights are given up for them."""
        return None

    def _files_stamp(self) -> str | None:
        from routerllm.model_files import files_stamp

        files = self.weights_files()
        return None if files is None else files_stamp(files)

    def _stamp_loaded(self) -> None:
        """What ``load`` calls before it reads the files: files replaced as it loads are
        found changed, and loaded again."""
        from routerllm.model_files import files_stamp

        files = self.weights_files()
        self._loaded_weights = (files, None if files is None else files_stamp(files))
        self._put_off = None

    def weights_stamp(self) -> str | None:
        """The identity of the weights the model answers with now (the request cache's
        key holds it): its files' as they are here, or, loaded and answering on while the
        files at their paths cannot be loaded yet, those it loaded; None where nothing here
        tells (a remote model's weights are its endpoint's, which the config names)."""
        now = self._files_stamp()
        return self._loaded_weights[1] if self._answers_on(now) else now

    @property
    def ready(self) -> bool:
        """Whether the model is loaded and generates without loading again: not from files
        replaced since by files it can load (``weights_changed``)."""
        return self.loaded and not self.weights_changed

    @property
    def weights_changed(self) -> bool:
        """Whether the model is loaded from files that have been replaced since by files it
        can load: the manager loads it again before it generates."""
        if not self.loaded:
            return False
        now = self._files_stamp()
        # asked first: the loaded files back, a replacement put off is forgotten
        return not self._answers_on(now) and now != self._loaded_weights[1]

    @property
    def answers_on(self) -> bool:
        """Whether the model is loaded and its loaded weights answer on while the files
        now at its paths cannot be loaded yet (``_answers_on``): it is available with them."""
        return self.loaded and self._answers_on(self._files_stamp())

    def _answers_on(self, now: str | None) -> bool:
        """Whether the loaded weights go on answering though other files, stamped ``now``,
        are at their paths: those cannot be loaded (``availability`` says why: a copy or a
        download under way; or ``_load_problem``: a whole file of an unknown architecture)
        and no loaded file was written in place (the model maps its files: the weights it
        loaded are gone then, and past the end of a file cut short the process dies of
        SIGBUS). A replacement is warned of once."""
        files, stamp = self._loaded_weights
        if not self.loaded or now == stamp:
            if self.loaded and self._put_off is not None:
                self._put_off = None  # the loaded files back: the next replacement is warned of
            return False
        seen = self._put_off
        if seen is None or seen[0] != now:
            from routerllm.model_files import written_in_place

            rewritten = (
                files and stamp is not None and written_in_place(files, stamp, self._mapped())
            )
            # a replacement that passes every check and still fails to load (an
            # architecture llama.cpp does not know) cost the weights still mapped whole
            why = None if rewritten else self.availability() or self._load_problem()
            if why is not None and (seen is None or seen[1] is None):
                log.warning(
                    "model %r: the files at its paths cannot be loaded yet (%s); the weights "
                    "it loaded still answer until they can",
                    self.name,
                    why,
                )
            self._put_off = seen = (now, why)
        return seen[1] is not None
