"""The embedded default (SQLite + fakeredis) starts with no servers and is ready."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr

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


async def test_embedded_stock_writes_and_deletes_take_the_sqlite_path(tmp_path: Path) -> None:
    """The row locks and the inventory upsert are written for PostgreSQL; SQLite (the embedded
    default) must take the same requests: stock set twice, an order, deletes."""
    url = f"sqlite:///{tmp_path}/kit.db"
    settings = Settings(
        env="test",
        database_url=url,
        first_admin_email="admin@example.com",
        first_admin_password=SecretStr("admin-password-1"),
        _env_file=None,
    )
    migrations.upgrade(url)
    app = create_app(settings)
    transport = ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=transport, base_url="http://t/api/v1") as c,
    ):
        login = {"username": "admin@example.com", "password": "admin-password-1"}
        token = (await c.post("/auth/login", data=login)).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        item = {"title": "Kettle", "category": "kitchen", "price": "10.00"}
        ordered, spare = [
            (await c.post("/items", headers=auth, json=item)).json()["id"] for _ in "ab"
        ]
        for quantity in (5, 3):  # inserted, then updated
            r = await c.put(
                f"/items/{ordered}/inventory", headers=auth, json={"quantity": quantity}
            )
            assert r.status_code == 200, r.text
            assert r.json()["quantity"] == quantity
        order = {"items": [{"id": ordered, "quantity": 1}]}
        assert (await c.post("/orders", headers=auth, json=order)).status_code == 201
        r = await c.delete(f"/items/{ordered}", headers=auth)
        assert r.status_code == 409
        assert r.json()["error"]["code"] == "item_in_use"
        assert (
            await c.patch(f"/items/{spare}", headers=auth, json={"price": "2"})
        ).status_code == 200
        assert (await c.delete(f"/items/{spare}", headers=auth)).status_code == 204
        assert (
            await c.put(f"/items/{spare}/inventory", headers=auth, json={"quantity": 1})
        ).status_code == 404


@pytest.mark.slow
def test_commands_create_a_metrics_directory_that_does_not_exist_yet(tmp_path: Path) -> None:
    """prometheus-client's multiprocess mode fails on the first metric if the directory is
    missing; the CLI creates it before anything imports the app's metrics."""
    metrics = tmp_path / "not" / "yet"
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        "KIT_DATABASE_URL": f"sqlite:///{tmp_path}/kit.db",
    }
    env.pop("KIT_REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "reference_app", "seed", "--users", "1", "--items", "0"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert metrics.is_dir()
