"""The OpenAI-compatible HTTP server: ``protocol`` reads and writes the API's JSON,
``app`` serves a ``RouterLLM`` with it (FastAPI, imported when used), ``options``
checks what the server is given, and ``serving`` runs it with uvicorn."""
