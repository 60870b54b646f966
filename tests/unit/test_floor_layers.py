"""`floor --layers` (loadtests/floor_layers.py): every variant answers, and the access line is
written through the kit's pipeline while it is timed."""

from __future__ import annotations

import logging

import pytest

from loadtests.floor_layers import LAYERS, layer_costs, print_layer_costs
from patterns.observability.logging import KIT_HANDLER


async def test_every_layer_variant_is_timed_and_answers_200(
    capsys: pytest.CaptureFixture[str],
) -> None:
    costs = await layer_costs(rounds=1, requests=20)  # a non-200 would raise
    assert list(costs)[: len(LAYERS)] == list(LAYERS)
    assert {"access line, structlog bound logger", "access line, LineLogger"} <= set(costs)
    assert all(micros > 0 for micros in costs.values())
    print_layer_costs(costs, rounds=1)
    printed = capsys.readouterr().out
    assert all(name in printed for name in costs)
    # The tool configured logging for its run and removed it afterwards.
    assert not [h for h in logging.getLogger().handlers if getattr(h, KIT_HANDLER, False)]
