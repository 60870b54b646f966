"""One warning per interval for a failure that repeats on every request (an outage).

A fail-open path (the cache, the revocation check) meets the same Redis error on every request
during an outage: a warning each time is hundreds of lines a second that bury everything else
and cost I/O when the service is already degraded. `RepeatedWarning` logs the first, then at most
one per `interval_s`, each saying how many similar warnings it held back in between.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class RepeatedWarning:
    """`warn(msg, *args)` logs through `logger` at most once per `interval_s`.

    The message gets " (N similar warnings suppressed)" appended, N counting the calls dropped
    since the last one logged. `clock`: monotonic seconds; tests pass their own.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._clock = clock
        self._last = float("-inf")
        self._suppressed = 0
        self._lock = threading.Lock()

    def warn(self, msg: str, *args: object) -> bool:
        """Log `msg % args` unless one was logged less than `interval_s` ago; return whether it
        was logged."""
        with self._lock:
            now = self._clock()
            if now - self._last < self._interval_s:
                self._suppressed += 1
                return False
            suppressed, self._suppressed, self._last = self._suppressed, 0, now
        self._logger.warning(msg + " (%d similar warnings suppressed)", *args, suppressed)
        return True


__all__ = ["RepeatedWarning"]
