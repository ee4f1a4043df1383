"""``python -m routerllm``: the ``routerllm`` command, where its script is not on PATH
(a virtual environment not activated). Until 2026-12-05 it said "No module named
routerllm.__main__"."""

from routerllm.cli import main

raise SystemExit(main())
