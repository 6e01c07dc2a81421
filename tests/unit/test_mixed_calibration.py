"""One EM for right/wrong and partial-credit items together: the same answer as a single-family
run where the models coincide, recovery with fixed seeds and stated tolerances, an objective
that never falls, and the command line on a mixed bank (each item in its own model, gates,
items the data cannot identify left out by name, wrong categories refused)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from irtcat.cli.main import main
from irtcat.domain.bank import Item, ItemBank
from irtcat.domain.generate import generate_bank
from irtcat.irt.calibration import CategoryData, EMSettings, Priors, ResponseData, calibrate_mixed, calibrate_polytomous
from irtcat.irt.model import prob
from irtcat.irt.polytomous import draw_responses


def mixed_bank(n_right_wrong: int, seed: int, model: str = "3PL") -> ItemBank:
    """``n_right_wrong`` generated right/wrong items, then 3 GRM and 3 GPCM items with 4
    categories (log a ~ N(0.2, 0.2^2); GRM b_1 ~ N(-1, 0.3^2) and steps of 1; GPCM steps
    ~ N(0, 0.7^2))."""
    rng = np.random.default_rng(seed)
    base = generate_bank(n_right_wrong, model, seed=seed, with_content=False)  # type: ignore[arg-type]
    extra = [Item(item_id=f"g{k}", model="GRM", a=float(np.exp(rng.normal(0.2, 0.2))),
                  b=[float(x) for x in np.cumsum([rng.normal(-1, 0.3), 1.0, 1.0])]) for k in range(3)]
    extra += [Item(item_id=f"m{k}", model="GPCM", a=float(np.exp(rng.normal(0.2, 0.2))),
                   b=sorted(float(x) for x in rng.normal(0.0, 0.7, 3))) for k in range(3)]
    return base.model_copy(update={"items": [*base.items, *extra], "scale": 1.0})


def complete_answers(bank: ItemBank, persons: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every person answers every item of ``bank`` (theta ~ N(0, 1)): (person, item, response)."""
    rng = np.random.default_rng(seed)
    engine = bank.engine
    theta = rng.normal(size=persons)
    n_rw = len(engine.params.a) - (0 if engine.poly is None else len(engine.poly))
    person = np.repeat(np.arange(persons), len(bank.items))
    item = np.tile(np.arange(len(bank.items)), persons)
    x = np.zeros(person.size, dtype=np.int64)
    rw = item < n_rw
    p = prob(theta[person[rw]], engine.params.subset(item[rw]))
    x[rw] = rng.random(p.size) < p
    assert engine.poly is not None
    x[~rw] = draw_responses(theta[person[~rw]], engine.poly.subset(item[~rw] - n_rw), rng)
    return person, item, x


def split(person: np.ndarray, item: np.ndarray, x: np.ndarray, n_rw: int, persons: int
          ) -> tuple[ResponseData, CategoryData]:
    rw = item < n_rw
    return (ResponseData.from_long(person[rw], item[rw], x[rw], persons, n_rw),
            CategoryData.from_long(person[~rw], item[~rw] - n_rw, x[~rw], persons))


def test_a_joint_run_equals_one_family_where_the_models_coincide() -> None:
    """A 2PL item is a GRM item with two categories. Without priors, a joint run of 12 2PL
    items and 6 partial-credit items finds the same maximum as one partial-credit run in which
    the 2PL items are two-category GRM items (estimates within 2e-3, log-likelihoods within 1e-3)."""
    bank = mixed_bank(12, seed=3, model="2PL")
    person, item, x = complete_answers(bank, 1500, seed=3)
    right_wrong, partial = split(person, item, x, 12, 1500)
    joint = calibrate_mixed(right_wrong, partial, model="2PL", partial_models=["GRM"] * 3 + ["GPCM"] * 3,
                            priors=Priors(), partial_priors=Priors(), standard_errors=False,
                            settings=EMSettings(n_nodes=61, tol=1e-7))
    everything = CategoryData.from_long(person, item, x, 1500)
    alone = calibrate_polytomous(everything, ["GRM"] * 15 + ["GPCM"] * 3, priors=Priors(), standard_errors=False,
                                 tol=1e-7)
    assert joint.converged and joint.right_wrong is not None and joint.partial is not None
    assert joint.right_wrong.a == pytest.approx(alone.a[:12], abs=2e-3)
    assert joint.right_wrong.b == pytest.approx(alone.thresholds[:12, 0], abs=2e-3)
    assert joint.partial.a == pytest.approx(alone.a[12:], abs=2e-3)
    assert np.nan_to_num(joint.partial.thresholds) == pytest.approx(np.nan_to_num(alone.thresholds[12:]), abs=2e-3)
    assert joint.log_likelihood == pytest.approx(alone.log_likelihood, abs=1e-3)
    assert np.all(np.diff(joint.history) > -1e-6)  # without priors to float the objective never falls


def test_joint_recovery_of_a_3pl_grm_gpcm_bank() -> None:
    """3,000 persons x (24 3PL + 3 GRM + 3 GPCM items), default priors, side by side with each
    family calibrated alone on its own answers: every RMSE (3PL a, b, c; partial-credit a and
    thresholds) within 10% of the single-family run's, the partial-credit ones under 0.1 (the
    average gain, larger for the right/wrong items, is measured by ``./dev bench --only
    mixed_calibration`` over 12 samples); the partial-credit SEs match the spread of the errors
    (z-scores' SD under 2)."""
    from irtcat.irt.calibration import calibrate

    bank = mixed_bank(24, seed=8)
    truth = bank.engine
    assert truth.poly is not None
    person, item, x = complete_answers(bank, 3000, seed=8)
    right_wrong, partial = split(person, item, x, 24, 3000)
    models = ["GRM"] * 3 + ["GPCM"] * 3
    result = calibrate_mixed(right_wrong, partial, model="3PL", partial_models=models)
    assert result.converged and result.right_wrong is not None and result.partial is not None
    rw_alone = calibrate(right_wrong, "3PL", n_nodes=61)
    pc_alone = calibrate_polytomous(partial, models)

    def rmse(est: np.ndarray, true: np.ndarray) -> float:
        return float(np.sqrt(np.nanmean((est - true) ** 2)))

    for name in ("a", "b", "c"):
        true = getattr(truth.params, name)[:24]
        assert rmse(getattr(result.right_wrong, name), true) <= 1.1 * rmse(getattr(rw_alone, name), true)
    pc = result.partial
    assert rmse(pc.a, truth.poly.a) < min(0.1, 1.1 * rmse(pc_alone.a, truth.poly.a))
    assert rmse(pc.thresholds, truth.poly.thresholds) < min(0.1, 1.1 * rmse(pc_alone.thresholds,
                                                                              truth.poly.thresholds))
    err_a, err_b = pc.a - truth.poly.a, pc.thresholds - truth.poly.thresholds
    z = np.concatenate([err_a / pc.se_a, (err_b / pc.se_thresholds)[~np.isnan(err_b)]])
    assert np.all(np.isfinite(z)) and np.std(z) < 2.0
    assert np.all(np.isfinite(result.right_wrong.se_b))


def test_joint_standard_errors_are_those_of_the_whole_hessian() -> None:
    """Without priors, the joint run's SEs of every a, b and threshold equal those from the
    numerical Hessian of the joint marginal log-likelihood (second differences, h = 1e-3) within
    0.5%; holding the other family fixed (the diagonal blocks alone) would make some SEs at least
    2% smaller: the block across the families matters."""
    from irtcat.irt.calibration import ItemEstimates, quadrature
    from irtcat.irt.calibration.data import posterior
    from irtcat.irt.calibration.partial_credit import category_log_likelihoods
    from irtcat.irt.calibration.right_wrong import log_posterior
    from irtcat.irt.polytomous import MODEL_CODES

    bank = mixed_bank(8, seed=8, model="2PL")
    person, item, x = complete_answers(bank, 800, seed=8)
    right_wrong, partial = split(person, item, x, 8, 800)
    models = ["GRM"] * 3 + ["GPCM"] * 3
    result = calibrate_mixed(right_wrong, partial, model="2PL", partial_models=models, priors=Priors(),
                             partial_priors=Priors(), settings=EMSettings(n_nodes=61, tol=1e-7))
    rw, pc = result.right_wrong, result.partial
    assert rw is not None and pc is not None
    nodes, weights = quadrature(61)
    codes = np.array([MODEL_CODES[m] for m in models], dtype=np.int8)

    def loglik(v: np.ndarray) -> float:
        est = ItemEstimates(v[8:16], v[:8], np.zeros(8))
        log_post = log_posterior(right_wrong, est, nodes, np.log(weights))
        log_post += category_log_likelihoods(partial, v[16:22], v[22:].reshape(6, 3), codes, nodes, 1.0)
        return posterior(log_post)[1]

    v0 = np.concatenate([rw.b, rw.a, pc.a, pc.thresholds.ravel()])
    h, size = 1e-3, v0.size
    steps = np.eye(size) * h
    hessian = np.zeros((size, size))
    for i in range(size):
        for j in range(i, size):
            hessian[i, j] = hessian[j, i] = (loglik(v0 + steps[i] + steps[j]) - loglik(v0 + steps[i] - steps[j])
                                             - loglik(v0 - steps[i] + steps[j])
                                             + loglik(v0 - steps[i] - steps[j])) / (4 * h * h)
    full = np.sqrt(np.diag(np.linalg.inv(-hessian)))
    ours = np.concatenate([rw.se_b, rw.se_a, pc.se_a, pc.se_thresholds.ravel()])
    assert ours == pytest.approx(full, rel=5e-3)
    conditional = np.concatenate([np.sqrt(np.diag(np.linalg.inv(-hessian[:16, :16]))),
                                  np.sqrt(np.diag(np.linalg.inv(-hessian[16:, 16:])))])
    assert np.max(full / conditional) > 1.02


def write_bank_and_answers(tmp_path: Path, bank: ItemBank, person: np.ndarray, item: np.ndarray,
                           x: np.ndarray) -> tuple[Path, Path]:
    ids = [it.item_id for it in bank.items]
    rows = ["student_id,item_id,response"] + [f"s{p},{ids[i]},{v}" for p, i, v in zip(person, item, x, strict=True)]
    responses = tmp_path / "r.csv"
    responses.write_text("\n".join(rows) + "\n")
    path = tmp_path / "bank.json"
    bank.dump(path)
    return path, responses


def test_cli_calibrates_a_mixed_bank_each_item_in_its_own_model(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """``--bank`` with partial-credit items and ``--model 3PL``: every item estimated in one run,
    each keeping its model; with ``--fixed operational`` only the pretest items (a 3PL and a
    GPCM one), promoted by the gates; an item whose category 2 nobody chose is left out with
    that reason; a category 2 answer to a right/wrong item is refused with its line."""
    truth = mixed_bank(20, seed=5)
    person, item, x = complete_answers(truth, 2500, seed=5)
    start = truth.model_copy(update={"items": [it.model_copy(update={"a": 1.0}) for it in truth.items]})
    path, responses = write_bank_and_answers(tmp_path, start, person, item, x)
    out = tmp_path / "v2.json"
    assert main(["calibrate", "--bank", str(path), "--model", "3PL", "--responses", str(responses),
                 "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "3PL+GRM+GPCM" and summary["converged"] and not summary["anchored"]
    assert len(summary["estimated"]) == 26
    v2 = ItemBank.load(out)
    assert [it.model for it in v2.items] == [it.model for it in truth.items]
    assert v2.calibration is not None and "joint model" in v2.calibration.se_method
    got = np.array([it.a for it in v2.items])
    assert np.corrcoef(got, [it.a for it in truth.items])[0, 1] > 0.8

    # online: one pretest item of each family, the rest fixed at the truth
    pretest = {"i00003", "m1"}
    online = truth.model_copy(update={"items": [
        it.model_copy(update={"status": "pretest", "a": 1.0}) if it.item_id in pretest else it
        for it in truth.items]})
    path, _ = write_bank_and_answers(tmp_path, online, person, item, x)
    assert main(["calibrate", "--bank", str(path), "--model", "3PL", "--fixed", "operational", "--responses",
                 str(responses), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["anchored"] and sorted(summary["estimated"]) == ["i00003", "m1"]
    v3 = ItemBank.load(out)
    changed = [it.item_id for it, before in zip(v3.items, online.items, strict=True) if it != before]
    assert sorted(changed) == ["i00003", "m1"]
    m1 = next(it for it in v3.items if it.item_id == "m1")
    assert m1.status == "operational" and m1.calibration_note == "promoted" and m1.model == "GPCM"

    # nobody in category 2 of g0: left out, named; the other items still estimated
    thin = x.copy()
    g0 = [it.item_id for it in truth.items].index("g0")
    thin[(item == g0) & (thin == 2)] = 1
    path, responses = write_bank_and_answers(tmp_path, start, person, item, thin)
    assert main(["calibrate", "--bank", str(path), "--model", "3PL", "--responses", str(responses),
                 "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["left_out"] == {"g0": "category 2 never observed (observed up to 3 of 3)"}
    assert "g0" not in summary["estimated"] and len(summary["estimated"]) == 25

    bad = x.copy()
    bad[(item == 0) & (person == 1)] = 2
    path, responses = write_bank_and_answers(tmp_path, start, person, item, bad)
    assert main(["calibrate", "--bank", str(path), "--model", "3PL", "--responses", str(responses),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "response 2 to item i00000" in err and "categories 0..1" in err


def test_nothing_to_estimate_and_persons_that_do_not_match_are_refused() -> None:
    with pytest.raises(ValueError, match="nothing to calibrate"):
        calibrate_mixed(None, None)
    rw = ResponseData.from_long(np.array([0, 1]), np.array([0, 0]), np.array([0, 1]), 2, 1)
    pc = CategoryData.from_long(np.array([0, 1, 2]), np.array([0, 0, 0]), np.array([0, 1, 1]), 3, 1)
    with pytest.raises(ValueError, match="same persons"):
        calibrate_mixed(rw, pc)
