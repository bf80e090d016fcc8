"""The HTTP API and dashboard for facility managers (FastAPI, served by uvicorn)."""
