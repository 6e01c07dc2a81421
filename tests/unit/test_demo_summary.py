"""The demo's throughput figures."""

from __future__ import annotations

import pytest
from irtcat.demo.run import sustained_rate


def test_sustained_rate_leaves_out_the_ramp_up_and_the_tail() -> None:
    steady = [10.0 + k / 20 for k in range(200)]  # 20 answers/s for 10 s
    ramp = [0.5 * k for k in range(20)]  # a slow start: 2 answers/s
    tail = [20.0 + k for k in range(25)]  # the last tablets finishing alone: 1 answer/s
    assert sustained_rate(steady) == pytest.approx(20.0, rel=0.01)
    assert sustained_rate(ramp + steady + tail) == pytest.approx(20.0, rel=0.1)
    assert sustained_rate([]) is None and sustained_rate([1.0, 1.0, 1.0]) is None
