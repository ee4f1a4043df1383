"""Packages a sandboxed program may import besides the standard library (opt-in).

The sandbox runs ``python -I -S``: no ``site``, so no site-packages. A problem set
whose tests import a package (EvalPlus's HumanEval+ tests compare floats with
``numpy.allclose``) runs once that package is named (``humaneval --sandbox-packages
numpy``): each program's folder gets a ``packages/`` folder of symlinks to the
harness's installed copy of each named package, and to the folder of shared
libraries its wheel bundles (``numpy.libs``), which the runner puts first on
``sys.path``. Nothing else of site-packages can be imported: a package that a named
one needs must be named too. Links, not copies: nothing is copied per program.

As root the programs run as a user of their own (else ``nobody``), possibly with the
system interpreter (:func:`routerllm.eval.sandbox_isolation._interpreter`):
:func:`check_sandbox_packages` imports each named package in the real sandbox once, before
any model runs, and says why where that fails (files only their owner or group can read,
a package built for another Python).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path

from routerllm.exceptions import RouterLLMError

LINKS_FOLDER = "packages"
# BLAS libraries (OpenBLAS in numpy's wheels, MKL) start a thread per core as they load:
# beyond the sandbox's headroom of tasks (NPROC_HEADROOM) numpy fails to import.
THREAD_LIMITS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def package_names(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` checked: each a top-level package, installed, not in the standard
    library, named once. Raises :class:`RouterLLMError` naming the first that is not."""
    if isinstance(names, str):
        names = [names]
    checked: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise RouterLLMError(
                f"sandbox package {name!r} is not a top-level package name (numpy, not "
                "numpy.linalg): the whole package is made importable"
            )
        if name in checked:
            raise RouterLLMError(f"sandbox package {name!r} is named twice")
        if name in sys.stdlib_module_names:
            raise RouterLLMError(
                f"sandbox package {name!r} is in the standard library, which the sandbox "
                "imports anyway: leave it out"
            )
        package_links(name)  # installed, and one folder or file
        checked.append(name)
    return tuple(checked)


@functools.cache
def package_links(name: str) -> tuple[tuple[str, Path], ...]:
    """(link name, target) of each path that makes ``name`` importable: the package's
    folder (or its module file) and the folders of libraries its wheel bundles."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as e:
        raise RouterLLMError(f"sandbox package {name!r} cannot be found: {e}") from e
    if spec is None:
        raise RouterLLMError(
            f"sandbox package {name!r} is not installed for {sys.executable}: install it "
            "(pip install ...), or leave it out"
        )
    locations = list(spec.submodule_search_locations or [])
    if len(locations) > 1 or (locations == [] and not spec.has_location):
        raise RouterLLMError(
            f"sandbox package {name!r} is not one folder or file (a namespace package, or "
            "built into the interpreter): the sandbox cannot link it"
        )
    target = Path(locations[0] if locations else str(spec.origin)).resolve()
    links = [(target.name, target)]
    links += [(folder.name, folder) for folder in _bundled_libraries(name, target.parent)]
    return tuple(links)


def _bundled_libraries(name: str, site: Path) -> list[Path]:
    """The ``<distribution>.libs`` folders (auditwheel's) beside the package, of the
    distributions that install it: its extension modules find them by a relative RPATH."""
    from importlib import metadata

    found: set[Path] = set()
    for dist in metadata.packages_distributions().get(name, []):
        try:
            files = metadata.distribution(dist).files or []
        except metadata.PackageNotFoundError:
            continue
        for file in files:
            top = file.parts[0] if file.parts else ""
            if top.endswith(".libs") and (site / top).is_dir():
                found.add((site / top).resolve())
    return sorted(found)


def link_packages(folder: Path, names: Iterable[str]) -> Path:
    """Make ``folder/packages`` hold a link to each of ``names``' paths; return it."""
    links = folder / LINKS_FOLDER
    links.mkdir(mode=0o755)
    for name in names:
        for link, target in package_links(name):
            (links / link).symlink_to(target, target_is_directory=target.is_dir())
    return links


def check_sandbox_packages(names: Iterable[str], memory_mb: int = 1024) -> tuple[str, ...]:
    """``names`` checked (:func:`package_names`), then imported in the real sandbox, as
    the programs will be: a clear error, before any model runs, where one cannot be."""
    from routerllm.eval.sandbox import _interpreter, run_program
    from routerllm.eval.sandbox_isolation import user_text

    checked = package_names(names)
    for name in checked:
        result = run_program(f"import {name}\n", timeout_s=60, memory_mb=memory_mb,
                             packages=checked)  # fmt: skip
        if result.passed:
            continue
        executable, isolation = _interpreter(sys.executable)
        where = str(package_links(name)[0][1])
        user = user_text(isolation)
        hint = (
            f"make {where} and the folders above it readable by all (chmod o+rX), or "
            "run the harness as a user other than root"
            if isolation.user is not None
            else f"check that {where} is built for {executable}"
        )
        raise RouterLLMError(
            f"the sandbox cannot import {name} ({result.detail}); it runs programs with "
            f"{executable} as {user} and a {memory_mb} MB address-space limit: {hint}, or "
            "name the packages it imports too"
        )
    return checked
