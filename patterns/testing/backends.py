"""Where the test servers come from: environment URLs, testcontainers, or local binaries.

Picked in that order. Each backend returns plain URLs (`postgresql://…`, `redis://…`) and knows
how to stop what it started; a server it did not start (an environment URL) is never stopped.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path
from typing import Any

POSTGRES_URL_ENV = "KIT_TEST_POSTGRES_URL"
REDIS_URL_ENV = "KIT_TEST_REDIS_URL"
POSTGRES_IMAGE = "postgres:15-alpine"
REDIS_IMAGE = "redis:7-alpine"


class NoBackendError(RuntimeError):
    """No way to get a server: the message names the three ways."""


@dataclass
class Service:
    """A running server: its URL, how it was obtained, and how to stop it (if ours)."""

    kind: str  # "postgres" | "redis"
    backend: str  # "env" | "testcontainers" | "local"
    url: str
    detail: str = ""
    stop_info: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.kind}: {self.backend} ({self.detail or _redact(self.url)})"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "backend": self.backend,
            "url": self.url,
            "detail": self.detail,
            "stop_info": self.stop_info,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Service:
        return cls(**dict(data))


def _redact(url: str) -> str:
    if "@" in url and ":" in url.split("@", 1)[0].split("//", 1)[-1]:
        scheme, rest = url.split("//", 1)
        creds, host = rest.split("@", 1)
        return f"{scheme}//{creds.split(':', 1)[0]}:***@{host}"
    return url


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_port(host: str, port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not accept connections on {host}:{port} in {timeout:.0f}s")


# --- 1. environment ------------------------------------------------------------------------


def from_environment(kind: str, environ: Mapping[str, str] | None = None) -> Service | None:
    env = os.environ if environ is None else environ
    var = POSTGRES_URL_ENV if kind == "postgres" else REDIS_URL_ENV
    url = env.get(var)
    if not url:
        return None
    return Service(kind, "env", url, detail=f"{var}={_redact(url)}")


# --- 2. testcontainers -----------------------------------------------------------------------


def from_testcontainers(kind: str) -> Service:
    """Start a container. Raises `docker.errors.DockerException` (from the container's
    constructor) when no Docker engine answers."""
    if kind == "postgres":
        from testcontainers.community.postgres import PostgresContainer

        pg = PostgresContainer(
            POSTGRES_IMAGE,
            username="postgres",
            password="postgres",  # noqa: S106 (a throwaway container)
            driver=None,
        )
        pg.start()
        url = pg.get_connection_url()
        return Service(
            kind,
            "testcontainers",
            url,
            POSTGRES_IMAGE,
            {"container_id": pg.get_wrapped_container().id},
        )
    from testcontainers.community.redis import RedisContainer

    rc = RedisContainer(REDIS_IMAGE)
    rc.start()
    url = f"redis://{rc.get_container_host_ip()}:{rc.get_exposed_port(6379)}/0"
    return Service(
        kind, "testcontainers", url, REDIS_IMAGE, {"container_id": rc.get_wrapped_container().id}
    )


def _stop_container(container_id: str) -> None:
    import docker

    client = docker.from_env()
    try:
        client.containers.get(container_id).remove(force=True)
    finally:
        client.close()


# --- 3. local binaries -----------------------------------------------------------------------


def find_postgres_bin(name: str) -> str | None:
    """`initdb`/`pg_ctl` on PATH, else the newest Debian-style install."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_key)
    return candidates[-1] if candidates else None


def _version_key(path: str) -> tuple[int, ...]:
    part = Path(path).parent.parent.name
    return tuple(int(x) for x in part.split(".") if x.isdigit())


def _unprivileged_user() -> str | None:
    """PostgreSQL refuses to run as root: pick `postgres` (or `nobody`) when we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise NoBackendError("running as root and no unprivileged user (postgres, nobody) exists")


def _as_user(user: str | None, argv: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *argv] if user else argv


def local_postgres() -> Service:
    initdb, pg_ctl = find_postgres_bin("initdb"), find_postgres_bin("pg_ctl")
    if not (initdb and pg_ctl):
        raise FileNotFoundError("initdb/pg_ctl not found on PATH or in /usr/lib/postgresql/*/bin")
    user = _unprivileged_user()
    root = Path(tempfile.mkdtemp(prefix="kit-pg-"))
    if user:
        info = pwd.getpwnam(user)
        os.chown(root, info.pw_uid, info.pw_gid)
    data = root / "data"
    port = free_port()

    def run(*argv: str) -> None:
        subprocess.run(_as_user(user, list(argv)), check=True, capture_output=True, cwd=root)

    run(
        initdb,
        "-D",
        str(data),
        "-A",
        "trust",
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--no-sync",
        "--no-instructions",
    )
    opts = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    run(pg_ctl, "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "-t", "60", "start")
    _wait_for_port("127.0.0.1", port, 30, "PostgreSQL")
    return Service(
        "postgres",
        "local",
        f"postgresql://postgres@127.0.0.1:{port}/postgres",
        detail=f"{initdb} on port {port}, data in {root}" + (f", as user {user}" if user else ""),
        stop_info={"pg_ctl": pg_ctl, "data": str(data), "root": str(root), "user": user},
    )


def local_redis() -> Service:
    server = shutil.which("redis-server")
    if not server:
        raise FileNotFoundError("redis-server not found on PATH")
    root = Path(tempfile.mkdtemp(prefix="kit-redis-"))
    port = free_port()
    proc = subprocess.Popen(
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(root),
            "--daemonize",
            "no",
            "--databases",
            "32",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait_for_port("127.0.0.1", port, 15, "Redis")
    return Service(
        "redis",
        "local",
        f"redis://127.0.0.1:{port}/0",
        detail=f"{server} on port {port}",
        stop_info={"pid": proc.pid, "root": str(root)},
    )


def stop(service: Service) -> None:
    """Stop a server this harness started; leave servers from the environment alone."""
    info = service.stop_info
    if service.backend == "testcontainers":
        _stop_container(info["container_id"])
    elif service.backend == "local" and service.kind == "postgres":
        subprocess.run(
            _as_user(
                info["user"], [info["pg_ctl"], "-D", info["data"], "-m", "immediate", "-w", "stop"]
            ),
            check=False,
            capture_output=True,
            cwd=info["root"],
        )
        shutil.rmtree(info["root"], ignore_errors=True)
    elif service.backend == "local" and service.kind == "redis":
        _terminate(int(info["pid"]))
        shutil.rmtree(info["root"], ignore_errors=True)


def _terminate(pid: int) -> None:
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return
        except ChildProcessError:  # not our child (another xdist process started it)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.05)
    os.kill(pid, 9)


# --- selection -------------------------------------------------------------------------------

Starter = Callable[[str], Service]


def _docker_unavailable(exc: BaseException) -> bool:
    try:
        from docker.errors import DockerException
    except ImportError:  # testcontainers not installed
        return True
    return isinstance(exc, DockerException | ConnectionError | FileNotFoundError)


def choose(
    kind: str,
    *,
    environ: Mapping[str, str] | None = None,
    testcontainers: Starter = from_testcontainers,
    local: Callable[[], Service] | None = None,
) -> tuple[Service, list[str]]:
    """Return a running service and the reasons earlier choices were passed over."""
    skipped: list[str] = []
    service = from_environment(kind, environ)
    if service:
        return service, skipped
    var = POSTGRES_URL_ENV if kind == "postgres" else REDIS_URL_ENV
    skipped.append(f"{var} is not set")
    try:
        return testcontainers(kind), skipped
    except Exception as exc:
        if not _docker_unavailable(exc):
            raise
        skipped.append(f"testcontainers: no Docker engine ({type(exc).__name__})")
    start_local = local or (local_postgres if kind == "postgres" else local_redis)
    try:
        return start_local(), skipped
    except (FileNotFoundError, NoBackendError) as exc:
        skipped.append(f"local binaries: {exc}")
    raise NoBackendError(
        f"No {kind} server for the tests. Tried: " + "; ".join(skipped) + ". Either set "
        f"{var} to a server you own, or start a Docker engine (testcontainers), or install the "
        + (
            "PostgreSQL server binaries (initdb, pg_ctl)."
            if kind == "postgres"
            else "redis-server binary."
        )
    )
