"""The outbox relay: publishes the tasks the order flow wrote to the outbox (docs: "Background
work"; guide: "Celery Tasks", "Order Processing Flow").

`relay_pending` takes a batch of outbox rows (`FOR UPDATE SKIP LOCKED`: several relays share the
table without waiting on each other), publishes each to the broker, deletes them and commits,
in that order. A relay that dies before its commit leaves the rows in place and they are
published again: a task may be sent twice, never lost, which `process_order` absorbs (it locks
the order and does nothing once it is no longer pending).

`OutboxRelay` runs `relay_pending` whenever rows may be waiting: at start (rows committed while
no relay ran), when PostgreSQL announces a commit on `OUTBOX_CHANNEL` (`LISTEN`; the order's
insert calls `pg_notify`; the relay lets `RELAY_GATHER_S` of further commits arrive first, so
under load one pass publishes many), when `wake()` is called (the embedded default, where the
API and the relay share a process), and every `poll_s` in any case (a notification missed while
the relay reconnected). It runs in the Celery worker's main
process (`OutboxRelayStep`, added by `python -m reference_app worker`), in the API process for
the embedded default, or alone (`python -m reference_app relay`).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from celery import bootsteps
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from patterns.db import is_sqlite
from patterns.observability.logging import get_logger
from reference_app.core.celery_app import KitCelery
from reference_app.models.outbox import OUTBOX_CHANNEL, OutboxMessage

logger = get_logger("reference_app.worker")

RELAY_BATCH = 200
RELAY_POLL_S = 5.0
# After a notification, how long the relay lets more commits arrive before it reads the outbox:
# under load one pass then publishes many rows (one SELECT, one DELETE, one COMMIT for all of
# them) instead of one pass per order. The order's task waits its countdown anyway.
RELAY_GATHER_S = 0.1
# How long one wait for a notification lasts: the longest a stop request waits.
_WAIT_SLICE_S = 0.5
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
                app.send_task(
                    row.task,
                    args=row.args,
                    eta=row.not_before,
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
        """Ask `run` to return (within `_WAIT_SLICE_S`); safe from a signal handler."""
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
        pause = _WAIT_SLICE_S
        while not self._stop.is_set():
            try:
                if is_sqlite(self.app.settings.database_url):
                    self._poll()
                else:
                    self._listen()
            except Exception as exc:
                logger.warning(
                    "outbox relay failed; retrying", error=type(exc).__name__, retry_in_s=pause
                )
                self._stop.wait(pause)
                pause = min(_RETRY_CAP_S, pause * 2)

    def _relay(self) -> None:
        self._wake.clear()
        relay_all(self.app)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._relay()
            self._wake.wait(self.poll_s)

    def _listen(self) -> None:
        url = self.app.sync_engine().url.set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
            self._relay()  # rows committed while nobody listened
            last = time.monotonic()
            while not self._stop.is_set():
                announced = any(True for _ in conn.notifies(timeout=_WAIT_SLICE_S, stop_after=1))
                if announced or self._wake.is_set() or time.monotonic() - last >= self.poll_s:
                    if announced:
                        self._stop.wait(RELAY_GATHER_S)
                    # Notifications that arrived meanwhile are covered by this pass.
                    for _ in conn.notifies(timeout=0):
                        pass
                    self._relay()
                    last = time.monotonic()


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
