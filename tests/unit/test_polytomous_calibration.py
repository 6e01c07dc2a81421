"""Calibration of GRM and GPCM items: recovery with fixed seeds and stated tolerances, an EM
that climbs, exact gradients, SEs that match the spread of the estimates, refused data, and the
command line writing a bank whose items carry model, a and the list b."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from irtcat.cli.main import main
from irtcat.domain.bank import ItemBank
from irtcat.irt.calibration import CategoryData, Priors, calibrate_polytomous, quadrature
from irtcat.irt.calibration.partial_credit import (
    Layout,
    _e_step,
    _item_terms,
    m_step,
    starting_values,
)
from irtcat.irt.polytomous import MODEL_CODES, PolytomousItems, draw_responses


def simulated(model: str, persons: int, items: int, seed: int) -> tuple[PolytomousItems, CategoryData]:
    """Complete data, 4 categories: log a ~ N(0.2, 0.25^2); GPCM steps ~ N(0, 1); GRM thresholds
    b_1 ~ N(-1, 0.5^2) and increments ~ U(0.6, 1.2) (no category too thin to be seen)."""
    rng = np.random.default_rng(seed)
    a = np.exp(rng.normal(0.2, 0.25, items))
    b = rng.normal(0.0, 1.0, (items, 3))
    if model == "GRM":
        b = np.cumsum(np.column_stack([rng.normal(-1.0, 0.5, items), rng.uniform(0.6, 1.2, (items, 2))]), axis=1)
    truth = PolytomousItems.build([model] * items, a, b.tolist())
    theta = rng.normal(size=persons)
    person = np.repeat(np.arange(persons), items)
    item = np.tile(np.arange(items), persons)
    x = draw_responses(theta[person], truth.subset(item), rng)
    return truth, CategoryData.from_long(person, item, x)


@pytest.mark.parametrize("model", ["GRM", "GPCM"])
def test_recovery_and_standard_errors(model: str) -> None:
    """2,000 persons x 12 items, default priors: RMSE of a and of the thresholds under 0.12
    (about 1.5 x their SEs); the SEs match the spread of the errors (z-scores' SD in 0.7-1.4)."""
    truth, data = simulated(model, 2000, 12, seed=5)
    result = calibrate_polytomous(data, model)
    assert result.converged
    err_a = result.a - truth.a
    err_b = result.thresholds - truth.thresholds
    assert np.sqrt(np.mean(err_a**2)) < 0.12
    assert np.sqrt(np.nanmean(err_b**2)) < 0.12
    z = np.concatenate([err_a / result.se_a, (err_b / result.se_thresholds)[~np.isnan(err_b)]])
    assert 0.7 < np.std(z) < 1.4
    assert np.all(result.rmsd < 0.05)


@pytest.mark.parametrize("model", ["GRM", "GPCM"])
def test_em_climbs_without_priors(model: str) -> None:
    _, data = simulated(model, 600, 6, seed=9)
    result = calibrate_polytomous(data, model, priors=Priors(), standard_errors=False, max_cycles=60, tol=1e-7)
    steps = np.diff(result.history)
    assert np.all(steps > -1e-6), steps.min()


@pytest.mark.parametrize("model", ["GRM", "GPCM", "mixed"])
def test_m_step_gradient_is_exact_and_the_m_step_reaches_its_maximum(model: str) -> None:
    """The per-item gradient matches central differences of the per-item objective; Fisher
    scoring ends where that gradient vanishes, above the objective at its start."""
    _, data = simulated("GRM" if model == "mixed" else model, 400, 5, seed=2)
    names = ["GRM", "GPCM", "GRM", "GPCM", "GPCM"] if model == "mixed" else [model] * 5
    codes = np.array([MODEL_CODES[m] for m in names], dtype=np.int8)
    layout = Layout(data.categories, codes)
    nodes, weights = quadrature(41)
    a, b = starting_values(data, names)
    counts, _ = _e_step(data, a, b, codes, nodes, np.log(weights), 1.0)
    vec = layout.pack(a * 1.3, b + 0.1)
    priors = Priors.default("2PL")
    _, grad, info = _item_terms(vec, layout, counts, nodes, priors, 1.0)
    grad = layout.scatter(grad)
    h = 1e-6
    numeric = np.array([(np.sum(_item_terms(vec + e, layout, counts, nodes, priors, 1.0)[0])
                         - np.sum(_item_terms(vec - e, layout, counts, nodes, priors, 1.0)[0])) / (2 * h)
                        for e in np.eye(vec.size) * h])
    assert grad == pytest.approx(numeric, abs=1e-5 * max(1.0, float(np.max(np.abs(grad)))))
    for j in range(5):  # the expected information is positive definite on each item's parameters
        m = 1 + int(layout.m[j])
        assert np.all(np.linalg.eigvalsh(info[j, :m, :m]) > 0)
    best = m_step(vec, layout, counts, nodes, priors, 1.0)
    value, at_best, _ = _item_terms(best, layout, counts, nodes, priors, 1.0)
    assert np.all(value > _item_terms(vec, layout, counts, nodes, priors, 1.0)[0])
    assert np.max(np.abs(at_best)) < 1e-3


def test_a_category_nobody_answered_in_is_refused_by_name() -> None:
    person = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    item = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    x = np.array([0, 1, 3, 3, 0, 0, 1, 1])  # item q0 has 0, 1, 3: category 2 missing
    with pytest.raises(ValueError, match=r"q0: category 2 never observed \(observed up to 3\)"):
        CategoryData.from_long(person, item, x, item_ids=["q0", "q1"])
    with pytest.raises(ValueError, match="q1: only category 0"):
        CategoryData.from_long(person, item, np.array([0, 1, 2, 2, 0, 0, 0, 0]), item_ids=["q0", "q1"])
    # the bank states 4 categories for q1: its top category never chosen is as unidentified
    with pytest.raises(ValueError, match=r"q1: category 3 never observed \(observed up to 2 of 3\)"):
        CategoryData.from_long(person, item, np.array([0, 1, 2, 2, 0, 1, 2, 2]), item_ids=["q0", "q1"],
                               categories=np.array([3, 4]))
    with pytest.raises(ValueError, match=r"q0: category 3 answered, but the item has categories 0..2"):
        CategoryData.from_long(person, item, np.array([0, 1, 3, 2, 0, 1, 2, 3]), item_ids=["q0", "q1"],
                               categories=np.array([3, 4]))
    with pytest.raises(ValueError, match="whole numbers"):
        CategoryData.from_long(person, item, np.array([0, 1, 2, 2, 0, 1, 0, -1]))


def test_cli_calibrates_grm_into_a_bank_with_model_a_and_thresholds(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    truth, data = simulated("GRM", 800, 5, seed=4)
    rows = ["student_id,item_id,response"] + [f"s{p},q{i},{x}" for p, i, x in
                                              zip(data.person, data.item, data.category, strict=True)]
    responses = tmp_path / "r.csv"
    responses.write_text("\n".join(rows) + "\n")
    out = tmp_path / "bank.json"
    assert main(["calibrate", "--model", "GRM", "--responses", str(responses), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "GRM" and summary["converged"]
    raw = json.loads(out.read_text())
    first = raw["items"][0]
    assert first["model"] == "GRM" and isinstance(first["b"], list) and len(first["b"]) == 3
    assert first["a"] > 0 and len(first["se_b"]) == 3
    bank = ItemBank.load(out)
    assert bank.model == "GRM" and bank.calibration is not None and bank.calibration.model == "GRM"
    assert np.corrcoef([it.a for it in bank.items], truth.a)[0, 1] > 0.9
    engine = bank.engine  # a partial-credit bank as the engine's arrays
    assert engine.poly is not None and engine.poly_index.tolist() == list(range(5))
    assert main(["bank", "publish", "--bank", str(out), "--bucket", "b"]) == 2  # no content: nothing to score
    assert "without a scoring rule" in capsys.readouterr().err


def test_cli_refuses_categories_for_right_wrong_models_and_a_mixed_bank(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    responses = tmp_path / "r.csv"
    responses.write_text("student_id,item_id,response\ns1,q1,2\ns2,q1,0\n")
    assert main(["calibrate", "--model", "2PL", "--responses", str(responses), "--out", str(tmp_path / "b")]) == 2
    assert "responses must be 0 or 1 (line 2)" in capsys.readouterr().err
    assert main(["calibrate", "--model", "GPCM", "--responses", str(responses), "--out", str(tmp_path / "b"),
                 "--fixed", "operational"]) == 2
    assert "--fixed operational needs --bank" in capsys.readouterr().err
    assert main(["calibrate", "--model", "GPCM", "--responses", str(responses), "--out", str(tmp_path / "b")]) == 2
    assert "category 1 never observed" in capsys.readouterr().err


def test_bank_items_state_their_partial_credit_model_or_are_refused() -> None:
    from irtcat.domain.bank import Item
    from pydantic import ValidationError

    assert Item(item_id="q", model="GPCM", a=1.2, b=[0.5, -0.3]).thresholds == [0.5, -0.3]
    with pytest.raises(ValidationError, match="needs \"model\": \"GRM\" or \"GPCM\""):
        Item(item_id="q", b=[0.0, 1.0])
    with pytest.raises(ValidationError, match="graded response thresholds must increase"):
        Item(item_id="q", model="GRM", b=[1.0, 0.0])
    with pytest.raises(ValidationError, match="has no c or d"):
        Item(item_id="q", model="GRM", b=[0.0], c=0.2)
    with pytest.raises(ValueError, match="has thresholds, not one b"):
        _ = Item(item_id="q", model="GRM", b=[0.0]).difficulty


def test_online_calibration_of_partial_credit_pretest_items(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A bank of 30 operational 3PL items and 4 pretest GRM items; 3,000 students answer all.
    With --bank --fixed operational the GRM items are estimated (RMSE of a and thresholds < 0.15),
    pass the promotion gates (or not, with the reason) and every other item is left as it was."""
    from irtcat.domain.bank import Item
    from irtcat.domain.generate import generate_bank
    from irtcat.irt.model import prob

    rng = np.random.default_rng(12)
    base = generate_bank(30, "3PL", seed=12, with_content=False)
    truth = [Item(item_id=f"g{k}", model="GRM", a=float(np.exp(rng.normal(0.2, 0.2))),
                  b=[float(x) for x in np.cumsum([rng.normal(-1, 0.3), 1.0, 1.0])], status="pretest")
             for k in range(4)]
    bank = base.model_copy(update={"items": [*base.items, *truth]})
    engine = bank.engine
    theta = rng.normal(size=3000)
    rows = ["student_id,item_id,response"]
    right = rng.random((3000, 30)) < prob(theta[:, None], engine.params.subset(np.arange(30)))
    assert engine.poly is not None
    cats = [draw_responses(theta, engine.poly.subset(np.full(3000, k)), rng) for k in range(4)]
    for p in range(3000):
        rows += [f"s{p},{bank.items[j].item_id},{int(right[p, j])}" for j in range(30)]
        rows += [f"s{p},g{k},{int(cats[k][p])}" for k in range(4)]
    responses = tmp_path / "r.csv"
    responses.write_text("\n".join(rows) + "\n")
    path = tmp_path / "bank.json"
    bank.dump(path)
    out = tmp_path / "v2.json"
    assert main(["calibrate", "--model", "GRM", "--responses", str(responses), "--bank", str(path),
                 "--fixed", "operational", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["anchored"] and summary["estimated"] == ["g0", "g1", "g2", "g3"]
    v2 = ItemBank.load(out)
    assert v2.version == bank.version + 1
    assert [it.model_dump() for it in v2.items[:30]] == [it.model_dump() for it in bank.items[:30]]
    got = v2.items[30:]
    assert np.sqrt(np.mean([(g.a - t.a) ** 2 for g, t in zip(got, truth, strict=True)])) < 0.15
    err_b = np.array([np.array(g.thresholds) - np.array(t.thresholds) for g, t in zip(got, truth, strict=True)])
    assert np.sqrt(np.mean(err_b**2)) < 0.15
    # 3,000 responses, every threshold's SE under 0.3 and a good fit: the gates promote them
    assert all(g.status == "operational" and g.calibration_note == "promoted" and g.se_b is not None for g in got)
    assert sorted(summary["promoted"]) == ["g0", "g1", "g2", "g3"]
    assert main(["calibrate", "--model", "GRM", "--responses", str(responses), "--bank", str(path),
                 "--fixed", "operational", "--promote-n", "5000", "--out", str(out)]) == 0
    held = ItemBank.load(out).items[30:]
    assert all(g.status == "pretest" and g.calibration_note == "n_responses 3000 < 5000" for g in held)
    assert main(["calibrate", "--model", "GPCM", "--responses", str(responses), "--bank", str(path),
                 "--fixed", "operational", "--out", str(out)]) == 2
    assert "no pretest GPCM items" in capsys.readouterr().err
