"""Backend selection: environment URLs, testcontainers, local binaries, else a clear error."""

from __future__ import annotations

import pytest

from patterns.testing import backends
from patterns.testing.backends import NoBackendError, Service, choose, free_port


def _local(kind: str) -> Service:
    return Service(kind, "local", f"{kind}://127.0.0.1:1/", detail="stub")


def test_environment_url_wins_without_touching_docker() -> None:
    def no_docker_expected(kind: str) -> Service:
        raise AssertionError("testcontainers must not be tried when the URL is set")

    env = {backends.POSTGRES_URL_ENV: "postgresql://postgres@db.example:5432/postgres"}
    svc, skipped = choose("postgres", environ=env, testcontainers=no_docker_expected)
    assert (svc.backend, svc.url) == ("env", env[backends.POSTGRES_URL_ENV])
    assert skipped == []


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_real_testcontainers_without_docker_falls_back_to_local_binaries(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A closed port stands in for "no Docker engine": testcontainers' own constructor raises
    # docker.errors.DockerException, which must lead to the next backend, not to an error.
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{free_port()}")
    svc, skipped = choose(kind, environ={}, local=lambda: _local(kind))
    assert svc.backend == "local"
    assert any("is not set" in s for s in skipped)
    assert any(s.startswith("testcontainers: no Docker engine (DockerException)") for s in skipped)


def test_no_backend_names_the_three_ways() -> None:
    def no_docker(kind: str) -> Service:
        from docker.errors import DockerException

        raise DockerException("Error while fetching server API version")

    def no_binaries() -> Service:
        raise FileNotFoundError("initdb/pg_ctl not found")

    with pytest.raises(NoBackendError) as info:
        choose("postgres", environ={}, testcontainers=no_docker, local=no_binaries)
    message = str(info.value)
    assert backends.POSTGRES_URL_ENV in message
    assert "Docker" in message
    assert "initdb" in message


def test_a_real_failure_is_not_mistaken_for_missing_docker() -> None:
    def broken(kind: str) -> Service:
        raise ValueError("bad image name")

    with pytest.raises(ValueError, match="bad image"):
        choose("redis", environ={}, testcontainers=broken, local=lambda: _local("redis"))


def test_service_round_trips_through_the_shared_state_file() -> None:
    svc = Service("redis", "local", "redis://127.0.0.1:7/0", "d", {"pid": 12})
    assert Service.from_json(svc.to_json()) == svc
    assert "***" in Service("postgres", "env", "postgresql://u:secret@h/db").describe()
