"""The OpenAI-compatible HTTP server: ``protocol`` reads and writes the API's JSON,
``app`` serves a ``RouterLLM`` with it (FastAPI, imported when used), ``refusals`` are
its error answers, ``metrics`` its ``GET /metrics`` for Prometheus, ``middleware`` sits
in front of it, ``options`` checks what the server is given, and ``serving`` runs it
with uvicorn."""
