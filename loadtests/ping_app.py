"""The baseline for the side-by-side measurement (guide: "Load Testing"): a bare FastAPI app
with one `/ping`, served by `loadtests/run.py` with the same uvicorn settings as the kit's app,
so the difference between the two is the kit's own work per request."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}
