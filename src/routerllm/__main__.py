"""``python -m routerllm``: the ``routerllm`` command, where its script is not on PATH
(a virtual environment not activated)."""

from routerllm.cli import main

raise SystemExit(main())
