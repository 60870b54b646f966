"""Celery in tests: a real worker thread on the real broker (guide: "Testing Background Tasks").

Not eager mode (`task_always_eager` runs the task inside `.delay()`: no serialisation, no broker,
no acknowledgement, no retry scheduling, none of what breaks in production) and not pytest-celery
1.x (it needs Docker). `worker_thread` runs Celery's own embedded worker against whatever broker
the app is configured with; the harness gives it a Redis logical database of its own.
`TaskEvents` records what was published and what was retried, from Celery's signals, so a test
can assert on messages without timing anything.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from celery import Celery, signals
from celery.worker import WorkController

from patterns.tasks import in_process_worker

# How long the worker's blocking read of the broker waits (Redis: `BRPOP`'s timeout, 1 s by
# default): the worker stops only after that read returns, so every test would wait up to 1 s.
STOP_POLL_S = 0.1


@contextmanager
def worker_thread(
    app: Celery, *, pool: str = "threads", concurrency: int = 2, loglevel: str = "WARNING"
) -> Iterator[WorkController]:
    """Start a worker for `app` on a thread of the test process; stop it when the block exits.

    `patterns.tasks.in_process_worker` with a test's defaults: `pool="threads"` lets two tasks
    run at once in one process (a concurrency test needs that); `pool="solo"` runs one at a time.
    The app is the current and default app meanwhile, so the test's `task.delay()` goes to this
    worker's broker. Its broker reads wait `STOP_POLL_S` at a time, so the block exits within
    that; the app's transport options are restored afterwards.
    """
    options = app.conf.broker_transport_options
    app.conf.broker_transport_options = {**(options or {}), "polling_interval": STOP_POLL_S}
    try:
        with in_process_worker(app, pool=pool, concurrency=concurrency, loglevel=loglevel) as w:
            yield w
    finally:
        app.conf.broker_transport_options = options


@dataclass(frozen=True)
class Published:
    task: str
    task_id: str
    args: list[Any] | None
    eta: str | None  # ISO 8601, set when the task was sent with a countdown or an ETA
    headers: dict[str, Any]


@dataclass(frozen=True)
class Retried:
    task: str
    task_id: str
    countdown: float | datetime | None  # what `self.retry(countdown=...)` chose
    reason: str
    retries: int = 0  # retries before this one (`request.retries`): 0 for the first


@dataclass
class TaskEvents:
    """Thread-safe lists of the messages an app published and the retries its tasks asked for."""

    app: Celery
    published: list[Published] = field(default_factory=list)
    retried: list[Retried] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _on_publish(
        self,
        sender: str | None = None,
        headers: dict[str, Any] | None = None,
        body: Any = None,
        **_: Any,
    ) -> None:
        headers = headers or {}
        # Protocol 2: the body is (args, kwargs, embed) before serialisation.
        args = list(body[0]) if isinstance(body, tuple | list) and body else None
        with self._lock:
            self.published.append(
                Published(
                    str(sender), str(headers.get("id")), args, headers.get("eta"), dict(headers)
                )
            )

    def _on_retry(
        self, sender: Any = None, request: Any = None, reason: Any = None, **_: Any
    ) -> None:
        if sender is None or sender.app is not self.app:
            return
        when = getattr(reason, "when", None)
        with self._lock:
            self.retried.append(
                Retried(
                    sender.name,
                    str(getattr(request, "id", "")),
                    float(when) if isinstance(when, int | float) else when,
                    str(getattr(reason, "exc", reason)),
                    int(getattr(request, "retries", 0) or 0),
                )
            )

    def published_ids(self, task: str) -> list[str]:
        with self._lock:
            return [p.task_id for p in self.published if p.task == task]

    def retry_countdowns(self, task_id: str) -> list[float | datetime | None]:
        """The countdowns of `task_id`'s retries, first retry first.

        In retry order, not signal order: Celery sends `task_retry` after publishing the retry,
        so with a short countdown and a thread pool the next attempt may signal its own retry
        first."""
        with self._lock:
            mine = [r for r in self.retried if r.task_id == task_id]
        return [r.countdown for r in sorted(mine, key=lambda r: r.retries)]


@contextmanager
def record_task_events(app: Celery) -> Iterator[TaskEvents]:
    """Record publishes (any app in this process) and `app`'s retries while the block runs."""
    events = TaskEvents(app)
    uid = f"kit.testing.task_events.{id(events)}"
    signals.before_task_publish.connect(events._on_publish, weak=False, dispatch_uid=uid)
    signals.task_retry.connect(events._on_retry, weak=False, dispatch_uid=uid)
    try:
        yield events
    finally:
        signals.before_task_publish.disconnect(dispatch_uid=uid)
        signals.task_retry.disconnect(dispatch_uid=uid)


__all__ = [
    "Published",
    "Retried",
    "TaskEvents",
    "record_task_events",
    "worker_thread",
]
