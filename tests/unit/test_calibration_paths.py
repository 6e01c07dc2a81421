"""One engine, three ways to run it: ``irtcat calibrate --bank`` (in process), the sharded loop
and the managed job (``irtcat local calibrate``'s steps) give the same estimates and standard
errors for the same answers and settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from irtcat.adapters.memory import MemoryBanks, MemoryObjects
from irtcat.cli.main import main
from irtcat.domain.bank import ItemBank
from irtcat.domain.calibration_history import applied_answers, history_keys
from irtcat.domain.calibration_job import CalibrationRequest, run_in_process
from irtcat.domain.generate import generate_bank, provisional_bank, simulated_history
from irtcat.irt.calibration import EMSettings, ItemEstimates, ResponseData, calibrate_sharded, starting_values

TOL = 1e-6  # the convergence tolerance all three run with
AGREE = 1e-4  # how close their estimates must be


def test_the_command_line_the_sharded_loop_and_the_job_agree(tmp_path: Path) -> None:
    truth = generate_bank(60, "3PL", seed=12, bank_id="m", pretest=6, with_content=False)
    bank = provisional_bank(truth)
    banks, history = MemoryBanks(), MemoryObjects()
    banks.publish(bank)
    for key, data in simulated_history(truth, 1500, seed=12).items():
        history.put(key, data)

    # the job, over 3 shards, as the Step Functions machine runs it
    work = MemoryObjects()
    job = run_in_process(CalibrationRequest(bank_id="m", shards=3, tol=TOL), banks, history, work, run_id="j",
                         publish_result=False)
    assert job.converged
    by_job = ItemBank.model_validate_json(work.get("calibration/m/j/bank.json"))

    # the same answers (each session's answer to an item once) through the command line
    answers: dict[tuple[str, str], int] = {}
    for rec in applied_answers(history, history_keys(history, None), "m", None):
        answers.setdefault((str(rec.session_id), str(rec.item_id)), int(rec.response or 0))
    csv = tmp_path / "answers.csv"
    csv.write_text("student_id,item_id,response\n" + "".join(f"{s},{i},{x}\n" for (s, i), x in answers.items()))
    bank.dump(tmp_path / "bank.json")
    out = tmp_path / "out.json"
    assert main(["calibrate", "--responses", str(csv), "--model", "3PL", "--bank", str(tmp_path / "bank.json"),
                 "--fixed", "operational", "--tol", str(TOL), "--out", str(out), "--json"]) == 0
    by_cli = ItemBank.load(out)

    # and through the sharded loop, persons split four ways
    index = {it.item_id: j for j, it in enumerate(bank.items)}
    sessions = sorted({s for s, _ in answers})
    person_of = {s: k for k, s in enumerate(sessions)}
    person = np.array([person_of[s] for s, _ in answers])
    item = np.array([index[i] for _, i in answers])
    x = np.array(list(answers.values()))
    whole = ResponseData.from_long(person, item, x, n_persons=len(sessions), n_items=len(bank.items))
    fixed = np.array([it.status != "pretest" for it in bank.items])
    start = starting_values(whole, "3PL", "pairwise")
    initial = ItemEstimates(np.where(fixed, [it.a for it in bank.items], start.a),
                            np.where(fixed, [it.b for it in bank.items], start.b),
                            np.where(fixed, [it.c for it in bank.items], start.c))
    shards = []
    for k in range(4):
        keep = person % 4 == k
        local = np.unique(person[keep], return_inverse=True)[1]
        shards.append(ResponseData.from_long(local, item[keep], x[keep], n_items=len(bank.items)))
    sharded = calibrate_sharded(shards, initial, fixed, "3PL", EMSettings(tol=TOL))
    assert sharded.converged

    pretest = np.flatnonzero(~fixed)
    for name in ("a", "b", "c", "se_a", "se_b"):
        cli = np.array([getattr(by_cli.items[j], name) for j in pretest], dtype=float)
        managed = np.array([getattr(by_job.items[j], name) for j in pretest], dtype=float)
        loop = getattr(sharded, name)[pretest]
        assert cli == pytest.approx(managed, abs=AGREE), name
        assert loop == pytest.approx(cli, abs=AGREE), name
    report = json.loads(work.get("calibration/m/j/report.json"))
    assert report["summary"]["iterations"] == sharded.iterations


def test_the_em_driver_resumes_from_its_saved_state_on_the_same_path() -> None:
    """EMRun saved to JSON and restored between every two E-steps (what the job's Lambdas do)
    takes the very path of an uninterrupted run: same points, same trace, same stop."""
    from irtcat.irt.calibration import EMRun, JointModel, Priors, e_step
    from irtcat.irt.datagen import generate_parameters, generate_responses

    params = generate_parameters(20, "3PL", seed=5)
    data = ResponseData.from_long(*generate_responses(params, np.random.default_rng(6).normal(size=800), seed=7))
    settings = EMSettings(tol=1e-5)
    nodes, log_w = settings.quadrature()
    start = starting_values(data, "3PL", "pairwise")
    free = np.ones(20, dtype=bool)
    model = JointModel("3PL", start, free, free, Priors.default("3PL"), nodes)

    def image(x: np.ndarray) -> tuple[np.ndarray, float]:
        return model.m_step(x, e_step(data, model.split(x)[0], nodes, log_w))

    whole = EMRun(settings, model.join(start, np.zeros(0)))
    while (x := whole.ask()) is not None:
        whole.tell(*image(x), model.project, model.change)
    doc = EMRun(settings, model.join(start, np.zeros(0))).to_doc()
    while True:
        run = EMRun.from_doc(settings, json.loads(json.dumps(doc)))
        x = run.ask()
        if x is None:
            break
        run.tell(*image(x), model.project, model.change)
        doc = run.to_doc()
    assert whole.converged and run.converged and run.cycles == whole.cycles
    assert run.trace == whole.trace and np.array_equal(run.x, whole.x)
