"""The embedded default's worker: tasks run on a thread of the API process
(docs/background-work.md).

With no Redis configured the broker is in memory, and only a consumer inside the publishing
process can see its messages. So the API's lifespan starts one Celery worker thread, instead of
switching Celery to eager mode: eager mode would run `process_order` inside the request's
after-commit hook, ignoring the countdown and making the client wait for the payment, and it would
skip everything a real worker does (serialisation, acknowledgement, retries through the broker).
The thread honours countdowns and retries like a separate worker. What it cannot do is outlive
the process: queued and delayed tasks are lost on a restart, which is the embedded default's
trade-off (point `KIT_REDIS_URL` at a server and run `python -m reference_app worker` for the
durable set-up). The outbox relay runs here too (`memory_broker_relay`): it must publish to the
in-memory broker of this process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from patterns.tasks import in_process_worker
from reference_app.core.celery_app import KitCelery, uses_memory_broker, worker_logging
from reference_app.worker.outbox import OutboxRelay


@contextmanager
def memory_broker_worker(celery: KitCelery) -> Iterator[bool]:
    """Run `celery`'s worker on a thread when its broker is in memory; yields whether it does."""
    if not uses_memory_broker(celery.settings):
        yield False
        return
    # "Connected to ...PromptMemoryTransport://" says nothing about an in-process queue: only
    # the consumer's warnings and errors are shown.
    connection_log = logging.getLogger("celery.worker.consumer.connection")
    level = connection_log.level
    connection_log.setLevel(max(level, logging.WARNING))
    try:
        # solo: one task at a time, which also suits SQLite's single writer.
        with worker_logging(celery), in_process_worker(celery, pool="solo", concurrency=1):
            yield True
    finally:
        connection_log.setLevel(level)


@contextmanager
def memory_broker_relay(celery: KitCelery) -> Iterator[OutboxRelay | None]:
    """Run the outbox relay on a thread when the broker is in memory; yields it, or None."""
    if not uses_memory_broker(celery.settings):
        yield None
        return
    relay = OutboxRelay(celery)
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()
