"""The managed calibration job's steps, in one process over in-memory storage: history ->
shards -> EM cycles -> candidate bank -> gates -> published version."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from irtcat.adapters.memory import MemoryBanks, MemoryObjects
from irtcat.domain.bank import ItemBank
from irtcat.domain.calibration_job import (
    CalibrationRequest,
    GatesFailed,
    prepare,
    publish,
    run_in_process,
)
from irtcat.domain.generate import generate_bank, provisional_bank, simulated_history
from irtcat.domain.history import HistoryRecord

DAY = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _world(persons: int = 2500, pretest: int = 6, seed: int = 3) -> tuple[ItemBank, MemoryBanks, MemoryObjects]:
    """A bank whose pretest items carry provisional values (a=1, b=0), and a history of CAT
    sessions simulated from the true values, 3 pretest items per session."""
    truth = generate_bank(150, "2PL", seed=seed, bank_id="m", pretest=pretest, with_content=False)
    banks = MemoryBanks()
    banks.publish(provisional_bank(truth))
    history = MemoryObjects()
    objects = simulated_history(truth, persons, seed=seed)
    # one answer delivered twice (the history is at least once) and one rejected record
    first = next(iter(objects))
    lines = objects[first].decode().splitlines()
    lines += [lines[0], HistoryRecord(record_type="answer", outcome="rejected", reason="schema",
                                      processed_at=DAY).model_dump_json()]
    objects[first] = ("\n".join(lines) + "\n").encode()
    for key, data in objects.items():
        history.put(key, data)
    return truth, banks, history


def test_a_run_calibrates_the_pretest_items_and_publishes_a_new_version() -> None:
    truth, banks, history = _world()
    work = MemoryObjects()
    req = CalibrationRequest(bank_id="m", shards=3, promote_n=300)
    job = run_in_process(req, banks, history, work, run_id="r1")
    assert job.converged and job.gates_passed and job.n_shards == 3
    assert banks.current_version("m") == 2
    new, old = banks.bank("m", 2), banks.bank("m", 1)
    pre = [j for j, it in enumerate(truth.items) if it.status == "pretest"]
    b_true = np.array([truth.items[j].b for j in pre])
    b_new = np.array([new.items[j].b for j in pre])
    assert float(np.sqrt(np.mean((b_new - b_true) ** 2))) <= 0.3
    assert all((o.a, o.b, o.c) == (n.a, n.b, n.c) for o, n in zip(old.items, new.items, strict=True)
               if o.status == "operational")
    assert job.promoted and all(new.items[j].status == "operational" for j in pre
                                if new.items[j].item_id in job.promoted)
    assert {"summary", "items"} <= set(__import__("json").loads(work.get("calibration/m/r1/report.json")))
    # the next run starts where this one ended: nothing new to calibrate
    again = run_in_process(CalibrationRequest(bank_id="m"), banks, history, work, run_id="r2")
    assert again.phase == "nothing" and banks.current_version("m") == 2


def test_sharding_does_not_change_the_estimates() -> None:
    _truth, banks, history = _world(persons=1200)
    one = run_in_process(CalibrationRequest(bank_id="m", shards=1), banks, history, w1 := MemoryObjects(),
                         run_id="a", publish_result=False)
    four = run_in_process(CalibrationRequest(bank_id="m", shards=4), banks, history, w4 := MemoryObjects(),
                          run_id="b", publish_result=False)
    assert one.converged and four.converged and one.iteration == four.iteration
    b1 = ItemBank.model_validate_json(w1.get("calibration/m/a/bank.json"))
    b4 = ItemBank.model_validate_json(w4.get("calibration/m/b/bank.json"))
    for x, y in zip(b1.items, b4.items, strict=True):
        assert x.b == pytest.approx(y.b, abs=1e-6) and x.a == pytest.approx(y.a, abs=1e-6)


def test_failed_gates_leave_the_bank_untouched() -> None:
    _truth, banks, history = _world(persons=600)
    work = MemoryObjects()
    job = run_in_process(CalibrationRequest(bank_id="m", min_run_responses=10**6), banks, history, work,
                         run_id="r", publish_result=False)
    assert job.gates_passed is False and "minimum" in job.gate_failures[0]
    with pytest.raises(GatesFailed, match="minimum"):
        publish(job, banks, work)
    assert banks.current_version("m") == 1


def test_an_answer_outside_its_items_categories_is_counted_and_left_out() -> None:
    """A history record scored 2 for a right/wrong item (as under a version where it had more
    categories) would fail every E-step: it is left out and counted, the run goes on."""
    _truth, banks, history = _world(persons=400)
    key = history.list("history/")[0]
    rec = HistoryRecord.model_validate_json(history.get(key).splitlines()[0])
    odd = rec.model_copy(update={"session_id": "odd", "response": 2})
    history.put(key, history.get(key) + (odd.model_dump_json() + "\n").encode())
    job = run_in_process(CalibrationRequest(bank_id="m"), banks, history, MemoryObjects(), run_id="o",
                         publish_result=False)
    assert job.n_out_of_range == 1 and job.converged


def test_a_bank_without_answered_pretest_items_has_nothing_to_calibrate() -> None:
    _truth, banks, _history = _world(persons=50)
    job = prepare(CalibrationRequest(bank_id="m"), banks, MemoryObjects(), MemoryObjects(), run_id="x")
    assert job.phase == "nothing" and job.n_responses == 0


def test_since_limits_the_run_to_newer_history_and_a_zoneless_time_is_utc() -> None:
    _truth, banks, history = _world(persons=300)
    everything = prepare(CalibrationRequest(bank_id="m"), banks, history, MemoryObjects(), run_id="a")
    later = prepare(CalibrationRequest.model_validate({"bank_id": "m", "since": "2026-11-21T12:00:00"}),
                    banks, history, MemoryObjects(), run_id="b")
    assert later.request.since is not None and later.request.since.tzinfo is not None
    assert 0 < later.n_responses < everything.n_responses


def test_the_new_version_records_its_priors_standard_errors_and_cycles() -> None:
    """The bank's metadata says how it was estimated; ``priors="none"`` runs plain MML, and the
    sharded job's observed-information SEs equal the single-process ones."""
    _truth, banks, history = _world(persons=1200)
    plain = run_in_process(CalibrationRequest(bank_id="m", shards=3, priors="none"), banks, history,
                           work := MemoryObjects(), run_id="p", publish_result=False)
    bank = ItemBank.model_validate_json(work.get("calibration/m/p/bank.json"))
    assert bank.calibration is not None
    assert bank.calibration.priors == {"log_a": None, "b": None, "c": None, "float_log_a": False}
    assert bank.calibration.se_method.startswith("observed information")
    assert bank.calibration.cycles == plain.iteration and bank.calibration.converged
    single = run_in_process(CalibrationRequest(bank_id="m", shards=1, priors="none"), banks, history,
                            one := MemoryObjects(), run_id="q", publish_result=False)
    assert single.iteration == plain.iteration
    other = ItemBank.model_validate_json(one.get("calibration/m/q/bank.json"))
    for x, y in zip(bank.items, other.items, strict=True):
        assert (x.se_b is None) == (y.se_b is None)
        if x.se_b is not None and y.se_b is not None:
            assert x.se_b == pytest.approx(y.se_b, rel=1e-4)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        CalibrationRequest(bank_id="m", priors={"b": [0, 0]})


def test_the_job_calibrates_partial_credit_pretest_items_beside_right_wrong_ones() -> None:
    """A 2PL bank whose items cycle 2PL, GRM, GPCM (pretest: two of each, provisional values):
    one run estimates all six, each in its model, from CAT histories. The partial-credit ones
    are recovered (RMSE of a under 0.25, of the thresholds under 0.3, with ~1,250 answers each)
    and promoted by the gates; one to four shards change neither their estimates nor their SEs
    (within 1e-6 and 1e-4; SEs of the joint model, the block across the families summed over
    the shards); operational items, right/wrong or partial credit, do not move."""
    from irtcat.domain.generate import with_partial_credit

    truth = with_partial_credit(generate_bank(150, "2PL", seed=4, bank_id="m", pretest=6, with_content=False),
                                ["2PL", "GRM", "GPCM"], seed=4)
    banks = MemoryBanks()
    banks.publish(provisional_bank(truth))
    history = MemoryObjects()
    for key, data in simulated_history(truth, 2500, seed=4).items():
        history.put(key, data)
    runs = {}
    for shards in (1, 4):
        work = MemoryObjects()
        job = run_in_process(CalibrationRequest(bank_id="m", shards=shards, promote_n=300), banks, history, work,
                             run_id=f"s{shards}", publish_result=False)
        assert job.converged and job.gates_passed, job.gate_failures
        runs[shards] = (job, ItemBank.model_validate_json(work.get(f"calibration/m/s{shards}/bank.json")))
    job, bank = runs[4]
    pretest = [j for j, it in enumerate(truth.items) if it.status == "pretest"]
    partial = [j for j in pretest if truth.items[j].model is not None]
    assert len(partial) == 4
    err_a = [bank.items[j].a - truth.items[j].a for j in partial]
    err_b = np.concatenate([np.subtract(bank.items[j].thresholds, truth.items[j].thresholds) for j in partial])
    assert float(np.sqrt(np.mean(np.square(err_a)))) < 0.25
    assert float(np.sqrt(np.mean(err_b**2))) < 0.3
    assert all(bank.items[j].model == truth.items[j].model and bank.items[j].se_b is not None for j in partial)
    assert {truth.items[j].item_id for j in partial} <= set(job.promoted)
    assert bank.calibration is not None and bank.calibration.se_method.startswith("observed information of the joint")
    one = runs[1][1]
    for j in pretest:
        x, y = bank.items[j], one.items[j]
        assert np.array(x.thresholds if x.model else [x.b]) == pytest.approx(
            np.array(y.thresholds if y.model else [y.b]), abs=1e-6)
        assert np.array(x.se_b) == pytest.approx(np.array(y.se_b), rel=1e-4)
    base = banks.bank("m", 1)
    assert all((o.model, o.a, o.b, o.c) == (n.model, n.a, n.b, n.c)
               for o, n in zip(base.items, bank.items, strict=True) if o.status == "operational")


def _history_and_served(truth: ItemBank, seed: int) -> tuple[MemoryObjects, dict[str, int]]:
    """2,500 simulated CAT sessions on ``truth`` as history, and how often each item was served."""
    import json

    history = MemoryObjects()
    served: dict[str, int] = {}
    for key, data in simulated_history(truth, 2500, seed=seed).items():
        history.put(key, data)
        for line in data.decode().splitlines():
            item = json.loads(line).get("item_id")
            served[item] = served.get(item, 0) + 1
    return history, served


def test_the_report_lists_operational_items_whose_answers_disagree_with_the_bank() -> None:
    """The bank says three often-served operational items are 0.6 easier than the answers show
    (the history comes from the truth): the job keeps them fixed (its gate) and its report lists
    them as drifting, and no other item."""
    import json

    truth = generate_bank(150, "2PL", seed=3, bank_id="m", pretest=6, with_content=False)
    history, served = _history_and_served(truth, seed=3)
    stale = provisional_bank(truth)
    ops = [j for j, it in enumerate(stale.items) if it.status == "operational"]
    moved = sorted(ops, key=lambda j: -served.get(stale.items[j].item_id, 0))[:3]  # the most served
    stale = stale.model_copy(update={"items": [it.model_copy(update={"b": float(it.b) - 0.6}) if j in moved else it
                                               for j, it in enumerate(stale.items)]})
    banks = MemoryBanks()
    banks.publish(stale)
    work = MemoryObjects()
    job = run_in_process(CalibrationRequest(bank_id="m", promote_n=300), banks, history, work, run_id="r1")
    drift = json.loads(work.get("calibration/m/r1/report.json"))["summary"]["drift"]
    assert drift["checked"] >= 20 and abs(drift["A"] - 1) < 0.1 and abs(drift["B"]) < 0.1
    found = {d["item_id"] for d in drift["drifting"]}
    assert {stale.items[j].item_id for j in moved} <= found and len(found) <= 4, drift["drifting"]
    assert all(d["d_b"] > 0.3 for d in drift["drifting"] if d["item_id"] in found)
    assert job.converged
    # the report says what reliability the bank's information allows a test of the sessions' length
    reliability = json.loads(work.get("calibration/m/r1/report.json"))["summary"]["reliability"]
    assert reliability["median_length"] == job.median_length > 0
    assert 0.5 < reliability["base_bound"] <= reliability["candidate_bound"] < 1


def test_the_new_version_carries_each_items_mean_log_response_time() -> None:
    """Answers timed at 20 s (some at 45 s): every item with 30 or more timed answers gets its
    mean log time, which sets its rapid-guess threshold; the others keep none."""
    import json

    _, banks, history = _world()
    rng = np.random.default_rng(1)
    for key in history.list("history/"):
        lines = []
        for line in history.get(key).decode().splitlines():
            rec = json.loads(line)
            if rec.get("record_type") == "answer" and rec.get("outcome") == "applied":
                rec["seconds"] = 20.0 if rng.random() < 0.8 else 45.0
            lines.append(json.dumps(rec))
        history.put(key, ("\n".join(lines) + "\n").encode())
    run_in_process(CalibrationRequest(bank_id="m", shards=2, promote_n=300), banks, history, MemoryObjects(),
                   run_id="r1")
    new = banks.bank("m", 2)
    timed = [it.mean_log_seconds for it in new.items if it.mean_log_seconds is not None]
    assert len(timed) >= 50  # the items served 30 or more times
    expected = 0.8 * np.log(20) + 0.2 * np.log(45)
    assert all(abs(t - expected) < 0.25 for t in timed)


def test_the_drift_check_covers_operational_partial_credit_items() -> None:
    """A bank whose items cycle 2PL, GRM, GPCM; the two most served operational partial-credit
    items' thresholds are 0.6 lower in the bank than in truth. The run's final E-step counts
    their expected categories too, and the report lists both as drifting (location shift above
    0.3), with the partial-credit items among those checked."""
    import json

    from irtcat.domain.generate import with_partial_credit

    truth = with_partial_credit(generate_bank(150, "2PL", seed=4, bank_id="m", pretest=6, with_content=False),
                                ["2PL", "GRM", "GPCM"], seed=4)
    history, served = _history_and_served(truth, seed=4)
    stale = provisional_bank(truth)
    poly = [j for j, it in enumerate(stale.items) if it.status == "operational" and it.model is not None]
    moved = sorted(poly, key=lambda j: -served.get(stale.items[j].item_id, 0))[:2]
    stale = stale.model_copy(update={"items": [
        it.model_copy(update={"b": [t - 0.6 for t in it.thresholds]}) if j in moved else it
        for j, it in enumerate(stale.items)]})
    banks = MemoryBanks()
    banks.publish(stale)
    work = MemoryObjects()
    run_in_process(CalibrationRequest(bank_id="m", promote_n=300), banks, history, work, run_id="r1",
                   publish_result=False)
    drift = json.loads(work.get("calibration/m/r1/report.json"))["summary"]["drift"]
    found = {d["item_id"]: d["d_b"] for d in drift["drifting"]}
    assert {stale.items[j].item_id for j in moved} <= set(found), drift
    assert all(found[stale.items[j].item_id] > 0.3 for j in moved)
    assert drift["checked"] > sum(1 for it in stale.items if it.status == "operational" and it.model is None
                                  and served.get(it.item_id, 0) >= 300)
