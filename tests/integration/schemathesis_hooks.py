"""The rules the OpenAPI document cannot state, taught to schemathesis' generator
(tests/integration/test_schema_fuzz.py loads this module through `SCHEMATHESIS_HOOKS`).

Each is a rule between values or between requests, or a value only the server issues; the
server refuses a request that breaks it with a 422 that says which (docs: Decisions, "The
OpenAPI document is the contract"). Everything else the fuzzer sends is drawn from the document.
"""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import schemathesis

_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Every phase's cases (the coverage phase's included), just before they are sent:

    * a price range is not upside down (`min_price` ≤ `max_price`): the two are swapped;
    * a cursor is opaque: only one the server returned names a page, so a generated one is
      left out;
    * an `Idempotency-Key` names one request body (another body with it is a 422, as the
      Idempotency-Key draft says): a well-formed generated key is replaced by one derived
      from the body, so the same body is a replay (200) and another body a new order.
    """
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and _IDEMPOTENCY_KEY.fullmatch(key):
        body = json.dumps(case.body, sort_keys=True, default=str).encode()
        headers["Idempotency-Key"] = "fuzz-" + hashlib.sha256(body).hexdigest()[:32]
    query = case.query
    if not query:
        return
    if "min_price" in query and "max_price" in query:
        low, high = _decimal(query["min_price"]), _decimal(query["max_price"])
        if low is not None and high is not None and low > high:
            query["min_price"], query["max_price"] = query["max_price"], query["min_price"]
    query.pop("cursor", None)
