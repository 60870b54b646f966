"""Reliable Celery tasks: sent after commit, retried with jittered backoff (guide: "Celery Tasks").

The guide's task retries *every* exception after `2 ** retries` seconds, and its order flow sends
the task inside the transaction, so a worker can run it before the commit (the order is not there
yet) or after a rollback (the order never will be). Here:

* `send_after_commit` publishes only once the session's transaction has committed, and never for a
  rollback (built on `patterns.db.session.on_commit`);
* `RetryPolicy` retries only the exceptions it names as transient, with exponential backoff, a cap
  and full jitter, so a burst of failures does not come back as a synchronised burst of retries;
* `ReliableTask` acknowledges a message only after the task ran (`acks_late`) and hands it back to
  the broker when the worker process dies mid-task (`reject_on_worker_lost`): such a task must be
  idempotent, because it can run twice;
* `in_process_worker` runs a worker on a thread of the current process, for the embedded default
  (an in-memory broker has no other consumer) and for tests.
"""

from __future__ import annotations

import functools
import logging
import math
import random
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

import anyio.to_thread
from celery import Celery, Task
from celery._state import get_current_app
from celery.contrib.testing.worker import start_worker
from celery.worker import WorkController
from kombu.transport import memory
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.background import BackgroundTasks

from patterns.db.session import on_commit

logger = logging.getLogger("patterns.tasks")

# 2 ** 62 seconds is far beyond any cap; a bounded exponent keeps the float arithmetic finite.
_MAX_EXPONENT = 62


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter ("Exponential Backoff And Jitter", AWS), capped.

    Before retry `n` (0-based: `self.request.retries`) the task waits a uniformly random time in
    `[0, min(cap_s, base_s * 2**n))`. The window grows, the draw spreads the retries of many
    failing tasks over it. `draw` is the random source in `[0, 1)`; tests pin it.
    """

    base_s: float
    cap_s: float
    max_retries: int
    transient: tuple[type[BaseException], ...]
    draw: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.base_s) and self.base_s > 0):
            raise ValueError("base_s must be a positive number of seconds")
        if not (math.isfinite(self.cap_s) and self.cap_s >= self.base_s):
            raise ValueError("cap_s must be at least base_s")
        if self.max_retries < 0:
            raise ValueError("max_retries must be 0 or more")

    def ceiling(self, retries: int) -> float:
        """The longest wait before retry number `retries` (0-based)."""
        exponent = min(max(retries, 0), _MAX_EXPONENT)
        return min(self.cap_s, self.base_s * 2.0**exponent)

    def countdown(self, retries: int) -> float:
        """A wait drawn uniformly from `[0, ceiling(retries))`."""
        return self.ceiling(retries) * self.draw()

    def is_transient(self, exc: BaseException) -> bool:
        return isinstance(exc, self.transient)


class ReliableTask(Task[Any, Any]):
    """A task acknowledged after it ran, and given back to the broker if its worker dies.

    Use as `base=ReliableTask`. A task of this kind may run more than once (a redelivery after a
    crash, a duplicate publish), so it must be idempotent.
    """

    acks_late = True
    reject_on_worker_lost = True

    def retry_transient(self, exc: Exception, policy: RetryPolicy) -> NoReturn:
        """Retry `exc` later when the policy calls it transient; re-raise it otherwise.

        Call from an `except` block. After `policy.max_retries` retries Celery re-raises `exc`
        and the task fails.
        """
        if not policy.is_transient(exc):
            raise exc
        raise self.retry(
            exc=exc,
            countdown=policy.countdown(self.request.retries),
            max_retries=policy.max_retries,
        )


class Sendable(Protocol):
    """A task or a signature: anything with Celery's `apply_async`."""

    def apply_async(self, args: Any = ..., kwargs: Any = ..., **options: Any) -> Any: ...


def send_after_commit(
    session: AsyncSession,
    task: Sendable,
    *,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    countdown: float | None = None,
    headers: Mapping[str, Any] | None = None,
    task_id: str | None = None,
    after_response: BackgroundTasks | None = None,
    log_context: Mapping[str, Any] | None = None,
    **options: Any,
) -> str:
    """Publish `task` once `session`'s transaction commits; nothing is sent on a rollback.

    Returns the task id, chosen now, so the caller can record or log it before the task exists.
    The publish runs on a worker thread: a broker round trip (or its retries when the broker is
    slow) must not block the event loop. The thread runs in a copy of the caller's context, so
    the request id still reaches the task's headers.

    A failed publish is logged and does not undo the commit: the work is then not done, so make
    the task's target findable again (the order stays pending, and a sweep re-sends it). The log
    line names the task and its id, plus `log_context` (e.g. `{"order_id": 7}`): the arguments
    themselves are not logged, they may hold personal data, so say which of them identify the
    work to redo.

    In an endpoint, pass its `BackgroundTasks` as `after_response`: once the commit succeeded,
    the publish is handed to them and runs after the response has been sent, so the client does
    not wait for the broker (nor, under load, for a worker thread to get the GIL). The client
    learns nothing from the publish either way: its failure never changes the response.
    """
    chosen_id = task_id or str(uuid.uuid4())
    publish = functools.partial(
        task.apply_async,
        args=tuple(args),
        kwargs=dict(kwargs or {}),
        task_id=chosen_id,
        **({"countdown": countdown} if countdown is not None else {}),
        **({"headers": dict(headers)} if headers is not None else {}),
        **options,
    )

    name = getattr(task, "name", None) or getattr(task, "task", None) or type(task).__name__
    about = "; " + " ".join(f"{k}={v}" for k, v in log_context.items()) if log_context else ""
    # Fields too, so a JSON log can be searched by them (`order_id=…`), not only read.
    fields = {"task": name, "task_id": chosen_id, **(log_context or {})}

    async def _send_logged() -> None:
        # Logged here, with what identifies the work, rather than as an anonymous hook failure.
        try:
            await anyio.to_thread.run_sync(publish)
        except Exception:
            logger.exception(
                "publishing task %s %s failed after commit%s", name, chosen_id, about, extra=fields
            )
        except BaseException:  # cancelled (the server is stopping): say so, then let it go
            logger.error(
                "publishing task %s %s was cancelled after commit%s",
                name,
                chosen_id,
                about,
                extra=fields,
            )
            raise

    if after_response is None:
        on_commit(session, _send_logged)
    else:
        on_commit(session, lambda: after_response.add_task(_send_logged))
    return chosen_id


class PromptMemoryTransport(memory.Transport):
    """kombu's in-memory transport, waiting for messages in short slices.

    A worker without an event loop waits in `drain_events(timeout=2.0)` and checks for shutdown
    only between waits, and once more after the last one: with the stock transport an in-process
    worker takes about 4 s to stop. Slices of `MEMORY_DRAIN_SLICE_S` make it stop at once.
    Select it with `broker_transport = MEMORY_TRANSPORT` (the URL stays `memory://`).
    """

    def drain_events(self, connection: Any, timeout: float | None = None, **kwargs: Any) -> None:
        slice_s = MEMORY_DRAIN_SLICE_S if timeout is None else min(timeout, MEMORY_DRAIN_SLICE_S)
        super().drain_events(connection, timeout=slice_s, **kwargs)


MEMORY_DRAIN_SLICE_S = 0.05
MEMORY_TRANSPORT = f"{__name__}:PromptMemoryTransport"


@contextmanager
def in_process_worker(
    app: Celery,
    *,
    pool: str = "solo",
    concurrency: int = 1,
    loglevel: str = "WARNING",
    shutdown_timeout: float = 10.0,
) -> Iterator[WorkController]:
    """A Celery worker on a thread of this process, consuming until the block exits.

    Built on Celery's own embedded worker (`celery.contrib.testing.worker.start_worker`, which
    waits until the consumer is ready and shuts it down cleanly). While it runs, the app is the
    process's current and default app (so `some_shared_task.delay()` publishes to it); the
    previous one is restored afterwards. Tasks with a countdown wait in the worker's timer as they
    would in a separate worker; with an in-memory broker they are lost when the process stops.
    """
    previous = get_current_app()
    try:
        with start_worker(
            app,
            pool=pool,
            concurrency=concurrency,
            loglevel=loglevel,
            perform_ping_check=False,
            shutdown_timeout=shutdown_timeout,
        ) as worker:
            yield worker
    finally:
        previous.set_current()
        previous.set_default()


__all__ = [
    "MEMORY_TRANSPORT",
    "PromptMemoryTransport",
    "ReliableTask",
    "RetryPolicy",
    "Sendable",
    "in_process_worker",
    "send_after_commit",
]
