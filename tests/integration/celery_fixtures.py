"""Celery fixtures: the app's tasks on a real worker thread, the harness's Redis and PostgreSQL.

Loaded by tests/integration/conftest.py. Each test that asks gets a fresh Celery app built by
`create_celery_app` from the test's settings (broker and result backend on this xdist worker's
Redis database, tasks on its PostgreSQL database), a recording payment gateway and a worker
started for it alone. The rows a task reads must be committed (`committed_db`): the task opens its
own connections and cannot see the test's rolled-back transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from patterns.tasks import RetryPolicy
from patterns.testing.celery import TaskEvents, record_task_events, worker_thread
from reference_app.core.celery_app import KitCelery, create_celery_app, worker_logging
from reference_app.core.config import Settings
from reference_app.core.payments import RecordingPaymentGateway

# Tiny delays so a test with retries takes milliseconds; the policy is the production one.
TEST_RETRY_BASE_S = 0.02
TEST_RETRY_CAP_S = 0.5
TEST_MAX_RETRIES = 3


@dataclass
class CeleryWorker:
    app: KitCelery
    gateway: RecordingPaymentGateway
    events: TaskEvents


CeleryWorkerFactory = Callable[..., AbstractContextManager[CeleryWorker]]


@pytest.fixture
def celery_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "task_retry_base_s": TEST_RETRY_BASE_S,
            "task_retry_cap_s": TEST_RETRY_CAP_S,
            "task_max_retries": TEST_MAX_RETRIES,
        }
    )


@pytest.fixture
def start_celery_worker(celery_settings: Settings, redis_client: Redis) -> CeleryWorkerFactory:
    """`with start_celery_worker(gateway=..., retry_policy=...) as celery:` — a running worker.

    Depends on `redis_client` so the broker's database is empty before and after the test.
    """

    @contextmanager
    def start(
        *,
        gateway: RecordingPaymentGateway | None = None,
        retry_policy: RetryPolicy | None = None,
        pool: str = "threads",
        concurrency: int = 2,
    ) -> Iterator[CeleryWorker]:
        recording = gateway or RecordingPaymentGateway()
        app = create_celery_app(
            celery_settings, payment_gateway=recording, retry_policy=retry_policy
        )
        try:
            with (
                record_task_events(app) as events,
                worker_logging(app),
                worker_thread(app, pool=pool, concurrency=concurrency),
            ):
                yield CeleryWorker(app, recording, events)
        finally:
            app.close()

    return start


@pytest.fixture
def celery_worker(start_celery_worker: CeleryWorkerFactory) -> Iterator[CeleryWorker]:
    """A worker with a gateway that accepts every payment."""
    with start_celery_worker() as worker:
        yield worker
