"""The embedded default (SQLite + fakeredis) starts with no servers and is ready."""

from __future__ import annotations

from pathlib import Path

from httpx import ASGITransport, AsyncClient

from reference_app.core import migrations
from reference_app.core.config import Settings
from reference_app.main import create_app


async def test_embedded_app_migrates_and_is_ready(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/sub/kit.db"
    settings = Settings(env="test", database_url=url, _env_file=None)
    assert settings.is_embedded
    (tmp_path / "sub").mkdir()
    migrations.upgrade(url)
    migrations.check(url)  # models and migrations agree on SQLite too
    app = create_app(settings)
    transport = ASGITransport(app=app)
    async with app.router.lifespan_context(app), AsyncClient(transport=transport) as c:
        r = await c.get("http://t/health/ready")
        assert r.status_code == 200
        assert r.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
        r = await c.get("http://t/api/v1/openapi.json")
        assert r.status_code == 200
