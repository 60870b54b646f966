"""A small payment-gateway interface for the order worker (guide: "Order Processing Flow").

There is no real provider. `FakePaymentGateway` (the default) accepts every capture;
`RecordingPaymentGateway` records calls and can be scripted to fail, for tests and demos. Both
honour the contract a real provider offers: a capture carries an idempotency key (the payment's
`reference`), and a second capture with the same key returns the first charge instead of charging
again. That is what makes a redelivered task safe when its worker died after the capture but
before the commit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


class PaymentError(Exception):
    """The gateway could not capture the payment."""


class TransientPaymentError(PaymentError):
    """Worth retrying later: a timeout, a 5xx, a rate limit at the provider."""


class PaymentDeclinedError(PaymentError):
    """Final: the provider refused the payment. Retrying would only be refused again."""


class PaymentGateway(Protocol):
    def capture(self, *, idempotency_key: str, amount: Decimal) -> str:
        """Capture `amount`; return the provider's charge id. Raises `PaymentError`s."""
        ...


class FakePaymentGateway:
    """Accepts every capture; the same idempotency key returns the same charge."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._charges: dict[str, str] = {}

    def capture(self, *, idempotency_key: str, amount: Decimal) -> str:
        with self._lock:
            return self._charges.setdefault(idempotency_key, f"ch_{len(self._charges) + 1}")


@dataclass(frozen=True)
class CaptureCall:
    idempotency_key: str
    amount: Decimal
    outcome: str  # "charged", "replayed" (same key again) or the exception's class name


class RecordingPaymentGateway:
    """Records every call (thread-safe: a threads-pool worker calls it concurrently).

    `failures` are raised by the first calls, in order; later calls succeed. `hold` is called
    inside `capture` before anything else, so a test can keep a capture in flight.
    """

    def __init__(
        self,
        failures: Iterable[PaymentError] = (),
        *,
        hold: threading.Event | None = None,
        hold_timeout_s: float = 10.0,
    ) -> None:
        self._lock = threading.Lock()
        self._failures = list(failures)
        self._charges: dict[str, str] = {}
        self._hold = hold
        self._hold_timeout_s = hold_timeout_s
        self.calls: list[CaptureCall] = []
        self.entered = threading.Event()

    def capture(self, *, idempotency_key: str, amount: Decimal) -> str:
        self.entered.set()
        if self._hold is not None:
            self._hold.wait(self._hold_timeout_s)
        with self._lock:
            if self._failures:
                error = self._failures.pop(0)
                self.calls.append(CaptureCall(idempotency_key, amount, type(error).__name__))
                raise error
            replayed = idempotency_key in self._charges
            charge = self._charges.setdefault(idempotency_key, f"ch_{len(self._charges) + 1}")
            self.calls.append(
                CaptureCall(idempotency_key, amount, "replayed" if replayed else "charged")
            )
            return charge

    @property
    def charges(self) -> int:
        """Distinct charges made: what the customer would see on their statement."""
        with self._lock:
            return len(self._charges)
