"""The outbox relay: publishes the tasks the order flow wrote to the outbox (docs: "Background
work"; guide: "Celery Tasks", "Order Processing Flow").

`relay_pending` takes a batch of outbox rows (`FOR UPDATE SKIP LOCKED`: several relays share the
table without waiting on each other), publishes each to the broker, deletes them and commits,
in that order. A relay that dies before its commit leaves the rows in place and they are
published again: a task may be sent twice, never lost, which `process_order` absorbs (it locks
the order and does nothing once it is no longer pending).

`OutboxRelay` runs `relay_pending` every `poll_s` (0.5 s), at start (rows committed while no
relay ran), and when `wake()` is called (the embedded default, where the API and the relay share
a process and the order flow wakes it after the commit). It polls rather than `LISTEN`s:
`pg_notify` in the order's transaction would serialise every notifying commit on a
database-wide lock (it more than halved commit throughput: docs "Decisions"), for a latency the
order's 5-minute countdown cannot use. An empty poll is one indexed `SELECT`; under load each
pass publishes many rows. It runs in the Celery worker's main process (`OutboxRelayStep`, added by
`python -m reference_app worker`), in the API process for the embedded default, or alone
(`python -m reference_app relay`).
"""

from __future__ import annotations

import threading
from typing import Any

from celery import bootsteps
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from patterns.observability.celery import REQUEST_ID_HEADER
from patterns.observability.logging import get_logger
from reference_app.core.celery_app import KitCelery
from reference_app.models.outbox import OutboxMessage

logger = get_logger("reference_app.worker")

RELAY_BATCH = 200
RELAY_POLL_S = 0.5
_RETRY_FIRST_S = 0.5
_RETRY_CAP_S = 10.0


def relay_pending(app: KitCelery, *, limit: int = RELAY_BATCH) -> int:
    """Publish up to `limit` outbox rows, oldest first, and delete them; how many were sent.

    One transaction: the rows are locked, published, deleted, committed. A broker error rolls
    it back and propagates (the rows stay for the next attempt); a publish that went out before
    a failed commit is sent again then.
    """
    with Session(app.sync_engine()) as session, session.begin():
        rows = session.scalars(
            select(OutboxMessage)
            .order_by(OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return 0
        with app.producer_or_acquire() as producer:
            for row in rows:
                # The order is already committed; this transaction only holds the outbox rows'
                # locks, so a publish inside it is the relay's point, not PF010.
                app.send_task(  # noqa: PF010
                    row.task,
                    args=row.args,
                    eta=row.not_before,
                    headers={REQUEST_ID_HEADER: row.request_id} if row.request_id else None,
                    producer=producer,
                    ignore_result=True,
                )
        session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_([r.id for r in rows])))
    return len(rows)


def relay_all(app: KitCelery) -> int:
    """`relay_pending` until the outbox is empty (or only holds rows another relay has)."""
    sent = total = relay_pending(app)
    while sent == RELAY_BATCH:
        sent = relay_pending(app)
        total += sent
    return total


class OutboxRelay:
    """Relays the outbox on a thread until `stop()`; see the module's docstring."""

    def __init__(self, app: KitCelery, *, poll_s: float = RELAY_POLL_S) -> None:
        self.app = app
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """Rows may be waiting: relay them now (called after a commit in this process)."""
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="outbox-relay", daemon=True)
        self._thread.start()

    def stop_soon(self) -> None:
        """Ask `run` to return after its current pass; safe from a signal handler."""
        self._stop.set()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_soon()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run(self) -> None:
        """Relay until stopped; a failure (database or broker away) is logged and retried with
        a growing pause, and nothing is lost meanwhile: the rows wait in the outbox."""
        pause = _RETRY_FIRST_S
        while not self._stop.is_set():
            self._wake.clear()
            try:
                relay_all(self.app)
            except Exception as exc:
                logger.warning(
                    "outbox relay failed; retrying", error=type(exc).__name__, retry_in_s=pause
                )
                self._stop.wait(pause)
                pause = min(_RETRY_CAP_S, pause * 2)
                continue
            pause = _RETRY_FIRST_S
            self._wake.wait(self.poll_s)


class OutboxRelayStep(bootsteps.StartStopStep):
    """Runs an `OutboxRelay` in the Celery worker's main process while the worker runs."""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.relay: OutboxRelay | None = None

    def start(self, parent: Any) -> None:
        app = parent.app
        if not isinstance(app, KitCelery):
            raise TypeError("the outbox relay needs an app from create_celery_app()")
        self.relay = OutboxRelay(app)
        self.relay.start()

    def stop(self, parent: Any) -> None:
        if self.relay is not None:
            self.relay.stop()
            self.relay = None
