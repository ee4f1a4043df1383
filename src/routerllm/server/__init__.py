"""The OpenAI-compatible HTTP server: ``protocol`` reads and writes the API's JSON,
``app`` serves a ``RouterLLM`` with it (FastAPI and uvicorn, imported when used)."""
