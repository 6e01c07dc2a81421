"""The calibration state machine (statemachines/calibration.asl.json) on the local stack: the
real definition with its Distributed Map, the real handlers, S3 through boto3."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from irtcat.adapters.aws import S3BankStore, S3Objects
from irtcat.cli.local_calibration import format_summary, run_calibration
from irtcat.domain.calibration_job import CalibrationRequest
from irtcat.domain.generate import generate_bank, provisional_bank, simulated_history, with_partial_credit

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack() -> Iterator[Any]:
    from irtcat.demo.run import settings_of
    from irtcat.emulator.runtime import LocalRuntime

    with LocalRuntime.up() as rt:
        settings = settings_of(rt)
        banks = S3BankStore(settings, ttl=0)
        history = S3Objects(settings.history_bucket)
        for bank_id, persons in (("m", 1500), ("g", 200), ("p", 1500)):
            truth = generate_bank(150, "2PL", seed=5, bank_id=bank_id, pretest=4, with_content=False)
            if bank_id == "p":  # items cycling 2PL, GRM, GPCM: pretest 2PL, GRM, GPCM, 2PL
                truth = with_partial_credit(truth, ["2PL", "GRM", "GPCM"], seed=5)
            banks.publish(provisional_bank(truth))
            for key, data in simulated_history(truth, persons, seed=6).items():
                history.put(key.replace("part-00000", f"part-{bank_id}"), data)
        yield rt, banks, settings.bank_bucket


def test_a_scheduled_run_publishes_a_new_version_with_the_promoted_items(stack: Any) -> None:
    rt, banks, bucket = stack
    outputs = rt.stack.outputs()
    s = run_calibration(outputs, bucket, CalibrationRequest(bank_id="m", shards=3, promote_n=300), run_id="nightly-1")
    assert s["status"] == "SUCCEEDED", s
    assert s["converged"] and s["n_shards"] == 3 and s["version_before"] == 1 and s["version_after"] == 2
    assert s["promoted"] and len(s["items"]) == 4
    old, new = banks.bank("m", 1), banks.bank("m", 2)
    assert all((o.a, o.b) == (n.a, n.b) for o, n in zip(old.items, new.items, strict=True) if o.status == "operational")
    assert {it.item_id for it in new.items if it.status == "operational"} >= set(s["promoted"])
    assert "promoted" in format_summary(s)
    # the schedule's next run finds nothing new and leaves the bank alone
    again = run_calibration(outputs, bucket, CalibrationRequest(bank_id="m"), run_id="nightly-2")
    assert again["status"] == "SUCCEEDED" and again["phase"] == "nothing" and again["version_after"] == 2


def test_a_run_that_fails_its_gates_stops_with_a_clear_error_and_leaves_the_bank(stack: Any) -> None:
    rt, banks, bucket = stack
    s = run_calibration(rt.stack.outputs(), bucket, CalibrationRequest(bank_id="g", min_run_responses=10**6),
                        run_id="gated-1")
    assert s["status"] == "FAILED" and s["error"] == "CalibrationRejected"
    assert any("minimum" in f for f in s["gate_failures"])
    assert s["version_after"] == s["version_before"] == 1 and banks.current_version("g") == 1


def test_a_run_calibrates_partial_credit_pretest_items_with_the_right_wrong_ones(stack: Any) -> None:
    """Through the real state machine: a bank whose pretest items are 2PL, GRM, GPCM, 2PL; every
    one is estimated in its model, the partial-credit ones with their thresholds and SEs."""
    rt, banks, bucket = stack
    s = run_calibration(rt.stack.outputs(), bucket, CalibrationRequest(bank_id="p", shards=2, promote_n=300),
                        run_id="mixed-1")
    assert s["status"] == "SUCCEEDED", s
    assert s["converged"] and s["version_after"] == 2 and len(s["items"]) == 4
    new = {it.item_id: it for it in banks.bank("p", 2).items}
    rows = {row["item_id"]: row for row in s["items"]}
    partial = [i for i, row in rows.items() if row.get("model")]
    assert sorted(rows[i]["model"] for i in partial) == ["GPCM", "GRM"]
    for item_id in partial:
        assert len(new[item_id].thresholds) == 3 and new[item_id].se_b is not None
        assert rows[item_id]["n_responses"] >= 300
    assert all(new[i].model is None for i in rows if i not in partial)
    assert "/" in format_summary(s)  # thresholds listed
