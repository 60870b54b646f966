"""The Celery app, built from settings (guide: "Celery Tasks", its `app/core/celery_app.py`).

Where the guide builds one module-level app from two URLs, `create_celery_app(settings)` builds
one per configuration (the worker command, the API's in-process worker, each test) and carries
what the tasks need: the settings, the payment gateway, the retry policy and a sync engine made
once per worker process. `get_celery_app()` is the process's app from the environment, as
`get_settings()` is its settings; `celery_app` (and `app`, for `celery -A
reference_app.core.celery_app`) name it lazily, so importing this module reads no settings.

Configuration, and why:
* JSON only, both ways: a pickled message from a compromised broker is code execution.
* `task_acks_late` + `task_reject_on_worker_lost`: a message is acknowledged after its task ran,
  and given back when the worker process dies, so a crash loses no order (the tasks are
  idempotent, a redelivery is safe).
* `worker_prefetch_multiplier=1`: with late acks a worker holds one message per process, so
  another worker can take the rest instead of them waiting behind a slow task.
* Redis `visibility_timeout` above the longest countdown: a message with a countdown sits unacked
  in a worker until its time comes; were that longer than the visibility timeout, Redis would hand
  it to a second worker and the task would run twice.
* A beat schedule with one entry, the sweep that re-sends orders left pending (a publish that
  failed after commit, a message lost with the broker); it runs only where beat runs
  (`python -m reference_app worker --beat` or `beat`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import lru_cache
from typing import Any

import psycopg
import sqlalchemy.exc
from celery import Celery
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

from patterns.db import is_sqlite, sqlite_pragmas, sync_url
from patterns.observability.celery import connect_celery_observability
from patterns.tasks import MEMORY_DRAIN_SLICE_S, MEMORY_TRANSPORT, RetryPolicy
from reference_app.core.config import Settings, get_settings
from reference_app.core.logging import setup_logging
from reference_app.core.metrics import TASK_OUTCOMES
from reference_app.core.payments import (
    FakePaymentGateway,
    PaymentGateway,
    TransientPaymentError,
)

TASK_MODULES = ("reference_app.worker.tasks", "reference_app.worker.requeue")
# Worth another attempt later: the database went away, timed out or lost a lock race
# (psycopg's lock_not_available, query_canceled and serialization_failure are OperationalErrors,
# and SQLAlchemy wraps them as its own OperationalError), the pool was exhausted, or the payment
# provider asked us to come back.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.TimeoutError,
    TransientPaymentError,
)
_MIN_VISIBILITY_TIMEOUT_S = 3600
# The sweep for orders left pending (`reference_app.worker.requeue`): beat runs it this often, and
# it re-sends orders older than the order countdown plus this margin.
REQUEUE_PENDING = "reference_app.worker.requeue.requeue_pending_orders"
REQUEUE_INTERVAL_S = 60.0
REQUEUE_MARGIN_S = 120
# A worker transaction waits at most this long for a row lock or a statement, then fails with a
# transient error and is retried, instead of holding a worker slot indefinitely.
_WORKER_LOCK_TIMEOUT_MS = 30_000
_WORKER_STATEMENT_TIMEOUT_MS = 60_000


def default_retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        base_s=settings.task_retry_base_s,
        cap_s=max(settings.task_retry_cap_s, settings.task_retry_base_s),
        max_retries=settings.task_max_retries,
        transient=TRANSIENT_ERRORS,
    )


def visibility_timeout_s(settings: Settings) -> int:
    """Twice the longest a message may wait unacked (countdown or retry), and at least 1 h."""
    longest_wait = max(settings.order_processing_delay_s, settings.task_retry_cap_s)
    return max(_MIN_VISIBILITY_TIMEOUT_S, int(2 * longest_wait))


def requeue_after_s(settings: Settings) -> int:
    """How old a pending order must be before the sweep re-sends it: its countdown has passed,
    with a margin for a busy worker, so an order whose message is merely waiting is left alone."""
    return settings.order_processing_delay_s + REQUEUE_MARGIN_S


def beat_schedule() -> dict[str, dict[str, Any]]:
    """What beat runs: the pending-order sweep. Its message expires with the interval, so a beat
    that ran while every worker was down leaves one sweep queued, not one per interval."""
    return {
        "requeue-pending-orders": {
            "task": REQUEUE_PENDING,
            "schedule": REQUEUE_INTERVAL_S,
            "options": {"expires": REQUEUE_INTERVAL_S},
        }
    }


def worker_concurrency(settings: Settings) -> int:
    """Processes per worker: the setting, else one per CPU the process may use."""
    if settings.worker_concurrency:
        return settings.worker_concurrency
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def uses_memory_broker(settings: Settings) -> bool:
    """No Redis configured: only a worker inside the publishing process can consume."""
    return settings.broker_url.startswith("memory://")


def make_worker_engine(database_url: str) -> Engine:
    """A sync engine (psycopg 3 / pysqlite) for task code, on the API's models."""
    url = sync_url(database_url)
    if is_sqlite(database_url):
        engine = create_engine(url)
        event.listen(engine, "connect", sqlite_pragmas)
        return engine
    return create_engine(
        url,
        pool_size=2,
        max_overflow=8,
        pool_pre_ping=True,
        pool_timeout=5,
        connect_args={
            "connect_timeout": 3,
            "options": (
                f"-c lock_timeout={_WORKER_LOCK_TIMEOUT_MS} "
                f"-c statement_timeout={_WORKER_STATEMENT_TIMEOUT_MS}"
            ),
        },
    )


class KitCelery(Celery):
    """A Celery app that carries its settings and the resources its tasks use."""

    def __init__(
        self,
        settings: Settings,
        *,
        payment_gateway: PaymentGateway,
        retry_policy: RetryPolicy,
    ) -> None:
        super().__init__(
            "reference_app",
            broker=settings.broker_url,
            backend=settings.result_backend,
            include=list(TASK_MODULES),
            # The process's default app is chosen explicitly (the worker, `in_process_worker`),
            # not by whichever app happened to be built last on this thread.
            set_as_current=False,
        )
        self.settings = settings
        self.payment_gateway = payment_gateway
        self.retry_policy = retry_policy
        self._engine: Engine | None = None
        self._engine_pid: int | None = None
        self._engine_lock = threading.Lock()
        # Request ids into task headers and task logs, outcomes counted per task. The logging
        # take-over is connected only while this process runs a worker (`worker_logging`):
        # Celery's `setup_logging` signal has no sender, so a receiver left behind by an app that
        # never runs a worker (one per FastAPI app) would reconfigure every other worker's logs.
        self._disconnect_observability = connect_celery_observability(
            self, task_outcomes=TASK_OUTCOMES
        )

    def sync_engine(self) -> Engine:
        """The worker process's engine, made on first use in that process.

        Made lazily and keyed by pid: a prefork child must not reuse connections inherited from
        its parent (two processes on one socket corrupt the protocol).
        """
        pid = os.getpid()
        with self._engine_lock:
            if self._engine is None or self._engine_pid != pid:
                self._engine = make_worker_engine(self.settings.database_url)
                self._engine_pid = pid
            return self._engine

    def close(self) -> None:
        """Release the broker pool, the engine and the signal receivers."""
        super().close()
        with self._engine_lock:
            if self._engine is not None and self._engine_pid == os.getpid():
                self._engine.dispose()
            self._engine = None
        self._disconnect_observability()


@contextmanager
def worker_logging(app: KitCelery) -> Iterator[None]:
    """While a worker for `app` starts and runs, Celery's logging set-up is the kit's.

    Without it Celery configures logging itself: it sets the root logger to the worker's level
    and gives task loggers their own handlers, around the kit's structlog pipeline.
    """
    disconnect = connect_celery_observability(
        app, configure_logging=lambda: setup_logging(app.settings)
    )
    try:
        yield
    finally:
        disconnect()


def create_celery_app(
    settings: Settings | None = None,
    *,
    payment_gateway: PaymentGateway | None = None,
    retry_policy: RetryPolicy | None = None,
) -> KitCelery:
    settings = settings or get_settings()
    app = KitCelery(
        settings,
        payment_gateway=payment_gateway or FakePaymentGateway(),
        retry_policy=retry_policy or default_retry_policy(settings),
    )
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=worker_concurrency(settings),
        worker_hijack_root_logger=False,
        broker_transport_options={"visibility_timeout": visibility_timeout_s(settings)},
        broker_connection_retry_on_startup=True,
        result_expires=timedelta(days=1),
        beat_schedule=beat_schedule(),
        enable_utc=True,
        timezone="UTC",
    )
    if uses_memory_broker(settings):
        # The in-process worker: pick messages up promptly and stop promptly.
        app.conf.broker_transport = MEMORY_TRANSPORT
        app.conf.broker_transport_options = {"polling_interval": MEMORY_DRAIN_SLICE_S}
    return app


@lru_cache
def get_celery_app() -> KitCelery:
    """The process's app, from the environment's settings, made once."""
    return create_celery_app(get_settings())


def __getattr__(name: str) -> KitCelery:
    # `celery_app` mirrors the guide's import; `app` is what `celery -A <module>` looks for.
    if name in ("celery_app", "app"):
        return get_celery_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
