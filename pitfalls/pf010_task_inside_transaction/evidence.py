"""PF010 evidence: the kit's `process_order` on a real worker (a thread of this process, on the
configured broker), for an order that is rolled back after the send, and for one whose commit
comes after the worker has picked the task up."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from types import ModuleType
from typing import Any

from celery import signals
from sqlalchemy import select

from patterns.db import session_scope
from patterns.tasks import in_process_worker
from pitfalls._evidence import Evidence
from pitfalls._runner import Backends
from pitfalls.pf010_task_inside_transaction import right, wrong
from reference_app.core.celery_app import KitCelery, create_celery_app
from reference_app.models import Order, User
from reference_app.worker.tasks import PROCESS_ORDER

WAIT_S = 30.0
QUEUE = "pf010"  # under the run's Redis prefix: no other worker consumes it


class _LaterStepFailed(Exception):
    """The request fails after the order was written (say, creating the payment intent)."""


@dataclass(frozen=True)
class Ran:
    order_id: int
    state: str  # Celery's: SUCCESS, FAILURE, RETRY
    result: str


@dataclass
class TaskLog:
    """`process_order` messages published in this process and the runs that finished, from
    Celery's signals, so the evidence waits for the worker instead of sleeping."""

    published: list[str] = field(default_factory=list)
    runs: dict[str, Ran] = field(default_factory=dict)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def on_publish(self, sender: Any = None, headers: Any = None, **_: Any) -> None:
        if sender == PROCESS_ORDER:
            with self._cond:
                self.published.append(str((headers or {}).get("id")))

    def on_postrun(
        self,
        task_id: str = "",
        task: Any = None,
        args: Any = None,
        retval: Any = None,
        state: str = "",
        **_: Any,
    ) -> None:
        if getattr(task, "name", None) == PROCESS_ORDER:
            result = (
                f"{type(retval).__name__}: {retval}"
                if isinstance(retval, Exception)
                else str(retval)
            )
            with self._cond:
                self.runs[task_id] = Ran(int(args[0]), state, result)
                self._cond.notify_all()

    def wait_idle(self) -> None:
        """Until every published message has run (the worker is FIFO: one task at a time)."""
        with self._cond:
            if not self._cond.wait_for(lambda: set(self.published) <= set(self.runs), WAIT_S):
                raise TimeoutError(f"process_order did not run within {WAIT_S} s")

    def runs_since(self, published: int) -> list[Ran]:
        """The runs of the messages published after the first `published` ones."""
        with self._cond:
            return [self.runs[i] for i in self.published[published:] if i in self.runs]


@contextmanager
def quiet_worker_logs() -> Iterator[None]:
    """The task failures are the evidence; their tracebacks and the worker's chatter are noise."""
    levels = {"celery": logging.WARNING, "celery.app.trace": logging.CRITICAL}
    levels |= {"kombu": logging.ERROR, "reference_app.worker": logging.CRITICAL}
    saved = {name: logging.getLogger(name).level for name in levels}
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@contextmanager
def worker(backends: Backends) -> Iterator[tuple[KitCelery, TaskLog]]:
    """A Celery app on the scratch database and a queue of this run's own, with a worker."""
    settings = backends.settings.model_copy(update={"database_url": backends.url})
    app = create_celery_app(settings)
    app.conf.update(
        task_default_queue=backends.key(QUEUE),
        task_ignore_result=True,
        worker_enable_remote_control=False,
    )
    backends.confine(app.sync_engine())
    log = TaskLog()
    uid = f"pitfalls.pf010.{id(log)}"
    signals.before_task_publish.connect(log.on_publish, weak=False, dispatch_uid=uid)
    signals.task_postrun.connect(log.on_postrun, weak=False, dispatch_uid=uid)
    try:
        with quiet_worker_logs(), in_process_worker(app, pool="solo"):
            yield app, log
    finally:
        signals.before_task_publish.disconnect(dispatch_uid=uid)
        signals.task_postrun.disconnect(dispatch_uid=uid)
        app.close()


@dataclass(frozen=True)
class Outcome:
    scenario: str
    runs: list[Ran]
    status: str | None  # the order's status afterwards; None: no such order


async def _status(backends: Backends, order_id: int) -> str | None:
    async with backends.sessionmaker() as s:
        return await s.scalar(select(Order.status).where(Order.id == order_id))


async def scenarios(backends: Backends, version: ModuleType) -> list[Outcome]:
    async with session_scope(backends.sessionmaker) as s:
        user = User(email=f"pf010-{version.__name__}@example.com", hashed_password="-")
        s.add(user)
    out = []
    with worker(backends) as (celery, log):
        before = len(log.published)
        try:
            async with session_scope(backends.sessionmaker) as s:
                order_id = await version.place_order(s, celery, user.id, Decimal("42.00"))
                raise _LaterStepFailed
        except _LaterStepFailed:
            pass
        await asyncio.to_thread(log.wait_idle)
        status = await _status(backends, order_id)
        out.append(
            Outcome("A: order rolled back after it was placed", log.runs_since(before), status)
        )

        before = len(log.published)
        async with session_scope(backends.sessionmaker) as s:
            order_id = await version.place_order(s, celery, user.id, Decimal("42.00"))
            # The rest of the request takes longer than the worker needs to pick the task up.
            await asyncio.to_thread(log.wait_idle)
        await asyncio.to_thread(log.wait_idle)
        status = await _status(backends, order_id)
        out.append(
            Outcome("B: order committed, the worker was quicker", log.runs_since(before), status)
        )
    return out


def _describe(runs: list[Ran]) -> str:
    if not runs:
        return "-"
    return "; ".join(
        "completed" if r.state == "SUCCESS" else f"{r.state.lower()}: {r.result}" for r in runs
    )


async def run(backends: Backends) -> Evidence:
    w, r = await scenarios(backends, wrong), await scenarios(backends, right)
    # kombu's routing keys for the run's queue live outside the run's key prefix.
    queue = backends.key(QUEUE)
    await backends.redis.delete(f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    rows: list[list[object]] = []
    for pair in zip(w, r, strict=True):
        for name, o in zip(("wrong", "right"), pair, strict=True):
            status = o.status or "none (rolled back)"
            if o.status == "pending":
                status += ", never processed"
            rows.append([o.scenario, name, len(o.runs), _describe(o.runs), status])
    shown = (
        len(w[0].runs) == 1
        and w[1].status == "pending"
        and not r[0].runs
        and r[1].status == "processed"
    )
    return Evidence(
        columns=["scenario", "version", "process_order runs", "outcome", "order afterwards"],
        rows=rows,
        shown=shown,
        verdict=(
            "wrong ran process_order for an order that was rolled back, and ran it too early for "
            "a committed one, which then stays pending for good; right sent nothing for the "
            "rollback and processed the committed order."
        ),
        notes=[
            f"Broker: {'Redis' if backends.real_redis else 'in-memory (the embedded default)'}; "
            "the worker is a thread of this process running one task at a time."
        ],
    )
