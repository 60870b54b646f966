"""Celery tasks log like requests do and carry the id of the request that queued them.

Realises the guide's "Structured Logging" for its "Celery Tasks": the id travels in a message
header, written when the task is published (inside the request) and bound again when the task
runs, so a task's lines share the request's `request_id` and add `task_id` and `task_name`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import structlog
from celery import Celery, Task, signals
from celery.utils.dispatch import Signal
from prometheus_client import Counter

from patterns.observability.request_id import get_request_id, set_request_id

REQUEST_ID_HEADER: Final = "x_request_id"
_TASK_FIELDS: Final = ("task_id", "task_name")


def _put_request_id_in_headers(
    sender: str | None = None, headers: dict[str, Any] | None = None, **_: Any
) -> None:
    request_id = get_request_id()
    if request_id and headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


def _bind_task_context(
    sender: Task[Any, Any] | None = None,
    task_id: str | None = None,
    task: Task[Any, Any] | None = None,
    **_: Any,
) -> None:
    if task is None:
        return
    # Protocol 2 exposes custom message headers as attributes of the task's request.
    request_id = getattr(task.request, REQUEST_ID_HEADER, None)
    set_request_id(request_id if isinstance(request_id, str) else None)
    structlog.contextvars.bind_contextvars(task_id=task_id, task_name=task.name)


def _unbind_task_context(**_: Any) -> None:
    # A worker process runs task after task: nothing may leak into the next one's lines.
    set_request_id(None)
    structlog.contextvars.unbind_contextvars(*_TASK_FIELDS)


def connect_celery_observability(
    app: Celery,
    *,
    task_outcomes: Counter | None = None,
    configure_logging: Callable[[], None] | None = None,
) -> Callable[[], None]:
    """Wire Celery's signals for request-id propagation and task-bound log context.

    Call it where the Celery app is defined, so both the API (which publishes) and the worker
    (which runs) are wired. Idempotent. Returns a function that disconnects this app's
    receivers (tests use it; the shared request-id receivers stay, they serve every app).

    `task_outcomes`: a Counter labelled (`task`, `outcome`) counted on success, failure and retry
    of this app's tasks. `configure_logging`: called by the worker instead of Celery's own logging
    set-up, so worker lines go through the same structlog pipeline as the API's.
    """
    signals.before_task_publish.connect(
        _put_request_id_in_headers, weak=False, dispatch_uid="kit.observability.publish"
    )
    signals.task_prerun.connect(
        _bind_task_context, weak=False, dispatch_uid="kit.observability.prerun"
    )
    signals.task_postrun.connect(
        _unbind_task_context, weak=False, dispatch_uid="kit.observability.postrun"
    )
    uid = f"kit.observability.{id(app)}"
    connected: list[tuple[Signal, str]] = []

    if task_outcomes is not None:
        counter = task_outcomes

        def count(outcome: str) -> Callable[..., None]:
            def receiver(sender: Task[Any, Any] | None = None, **_: Any) -> None:
                if sender is not None and sender.app is app:
                    counter.labels(task=sender.name, outcome=outcome).inc()

            return receiver

        for signal, outcome in (
            (signals.task_success, "success"),
            (signals.task_failure, "failure"),
            (signals.task_retry, "retry"),
        ):
            signal.connect(count(outcome), weak=False, dispatch_uid=f"{uid}.{outcome}")
            connected.append((signal, f"{uid}.{outcome}"))

    if configure_logging is not None:
        setup = configure_logging

        def take_over_logging(**_: Any) -> None:
            # Any receiver of setup_logging stops Celery from configuring (and hijacking) the
            # root logger itself.
            setup()

        signals.setup_logging.connect(take_over_logging, weak=False, dispatch_uid=f"{uid}.logging")
        connected.append((signals.setup_logging, f"{uid}.logging"))

    def disconnect() -> None:
        for signal, dispatch_uid in connected:
            signal.disconnect(dispatch_uid=dispatch_uid)

    return disconnect
