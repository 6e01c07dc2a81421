"""No bank goes live uncontrolled: a bank names the policy its exposure control was computed for;
publish (and import with --policy) computes it when it is missing or stale, simulate and the
session start warn when a policy asks for control its bank lacks."""

from __future__ import annotations

from pathlib import Path

import pytest
from irtcat.adapters.memory import MemoryBanks, MemorySessions, MemoryStudents
from irtcat.domain.api import StartSessionRequest
from irtcat.domain.bank import ItemBank
from irtcat.domain.exposure import with_exposure_control
from irtcat.domain.generate import generate_bank
from irtcat.domain.policy import StoppingPolicy, TestDefinition, TestPolicy
from irtcat.domain.steps import start_session

POLICY = TestPolicy(stopping=StoppingPolicy(max_items=10, min_items=10, se_threshold=None))


def _small() -> ItemBank:
    return generate_bank(60, "2PL", seed=4, bank_id="small")


def test_the_marker_names_the_policy_and_a_change_of_policy_makes_it_stale() -> None:
    bank = _small()
    assert "carries no exposure control" in (POLICY.exposure_problem(bank) or "")
    controlled, _ = with_exposure_control(bank, POLICY, examinees=300, rounds=2)
    assert controlled.exposure_control is not None and POLICY.exposure_problem(controlled) is None
    assert controlled.exposure_control.policy_digest == POLICY.exposure_digest()
    # the test id or the reporting scale shape nothing; the cap and the length do
    assert POLICY.model_copy(update={"test_id": "other"}).exposure_problem(controlled) is None
    tighter = POLICY.model_copy(update={"max_exposure": 0.2})
    assert "for another policy" in (tighter.exposure_problem(controlled) or "")
    assert POLICY.model_copy(update={"sympson_hetter": False}).exposure_problem(bank) is None
    assert ItemBank.model_validate_json(controlled.model_dump_json()).exposure_control == controlled.exposure_control


def test_publish_and_import_compute_it_when_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from irtcat.cli.items import ensure_exposure_control

    path = tmp_path / "bank.json"
    bank = _small()
    bank.dump(path)
    controlled = ensure_exposure_control(bank, POLICY, path)
    assert POLICY.exposure_problem(controlled) is None and ItemBank.load(path).exposure_control is not None
    assert "computing it for this policy" in capsys.readouterr().err
    assert ensure_exposure_control(controlled, POLICY, path) is controlled  # nothing to do


def test_simulate_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from irtcat.cli.main import main

    _small().dump(tmp_path / "bank.json")
    (tmp_path / "policy.json").write_text(POLICY.model_dump_json())
    assert main(["simulate", "--bank", str(tmp_path / "bank.json"), "--policy", str(tmp_path / "policy.json"),
                 "--examinees", "20", "--json"]) == 0
    assert "warning: bank small v1 carries no exposure control" in capsys.readouterr().err


def test_a_session_start_on_an_uncontrolled_bank_is_heard() -> None:
    banks = MemoryBanks()
    banks.publish(_small())
    banks.put_test(TestDefinition(test_id="t", bank_id="small", policy=POLICY))
    students = MemoryStudents()
    sessions = MemorySessions(catalog=banks, students=students)
    heard: list[str] = []
    view, created = start_session(StartSessionRequest(student_id="s1", test_id="t"), sessions, students, banks,
                                  warn=heard.append)
    assert created and view.item is not None  # the student is served all the same
    assert len(heard) == 1 and "carries no exposure control" in heard[0]


def test_a_promotion_recomputes_exposure_control_for_the_same_policy() -> None:
    from irtcat.domain.exposure import after_promotion

    controlled, _ = with_exposure_control(_small(), POLICY, examinees=300, rounds=2)
    assert controlled.exposure_control is not None and controlled.exposure_control.policy is not None
    # a calibration run promotes two pretest items: they come with exposure_k 1 and no price
    items = list(controlled.items)
    for k in (0, 1):
        items[k] = items[k].model_copy(update={"status": "pretest"})
    before = controlled.model_copy(update={"items": items})
    promoted = before.model_copy(update={"items": [it.model_copy(update={"status": "operational", "exposure_k": 1.0,
                                                                         "exposure_price": 0.0})
                                                   for it in before.items]})
    redone, note = after_promotion(promoted)
    assert note is not None and "recomputed" in note and POLICY.exposure_problem(redone) is None
    assert redone.exposure_control == controlled.exposure_control
    assert [it.exposure_price for it in redone.items] != [it.exposure_price for it in promoted.items]
    assert after_promotion(_small()) == (_small(), None)
