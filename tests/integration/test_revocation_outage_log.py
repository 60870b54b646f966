"""A Redis outage under the fail-open revocation check logs a warning per interval, not per
request (the probe saw 590 warnings in 10 s): `patterns.observability.repeated_warning`."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from patterns.security import Claims, TokenType
from patterns.security.revocation import RevocationList
from patterns.testing import FakeClock

pytestmark = pytest.mark.slow

LOGGER = "patterns.security.revocation"
CLAIMS = Claims(
    sub="1",
    type=TokenType.ACCESS,
    jti="some-jti",
    iat=datetime(2026, 1, 1, tzinfo=UTC),
    exp=datetime(2026, 1, 1, 0, 30, tzinfo=UTC),
)


async def test_an_outage_logs_one_skipped_check_warning_per_interval(
    dead_redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(0.0)
    revocations = RevocationList(dead_redis, fail_open=True, warn_interval_s=30, clock=clock)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(590):  # ten seconds of authenticated requests
            assert await revocations.is_revoked(CLAIMS) is False
        clock.now = 30.0
        assert await revocations.is_revoked(CLAIMS) is False

    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(messages) == 2
    assert messages[0].startswith("revocation check skipped: Redis unavailable (")
    assert messages[0].endswith("(0 similar warnings suppressed)")
    assert messages[1].endswith("(589 similar warnings suppressed)")
