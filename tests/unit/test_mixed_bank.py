"""The adaptive step on a mixed bank (3PL, GRM and GPCM items): information, the incremental
EAP against a posterior computed from scratch, simulation in categories, and clear refusals for
the rules that need right/wrong items."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from irtcat.cli.main import main
from irtcat.domain.bank import Item, ItemBank
from irtcat.domain.generate import generate_bank
from irtcat.domain.policy import TestPolicy
from irtcat.irt.cat import record_answer
from irtcat.irt.model import information as information_4pl
from irtcat.irt.polytomous import category_probabilities
from irtcat.irt.polytomous import information as information_poly
from irtcat.irt.simulation import simulate
from irtcat.irt.state import CatState


def mixed_bank(right_wrong: int = 150, partial: int = 50, seed: int = 3) -> ItemBank:
    """``right_wrong`` 3PL items, then ``partial`` partial-credit items alternating GRM and GPCM
    (4 categories; a ~ LogN(0.2, 0.25); thresholds around N(0, 1))."""
    base = generate_bank(right_wrong, "3PL", seed=seed, with_content=False)
    rng = np.random.default_rng(seed)
    extra = []
    for j in range(partial):
        model = "GRM" if j % 2 == 0 else "GPCM"
        center = rng.normal()
        b = sorted(center + np.array([-1.0, 0.0, 1.0]) + rng.normal(0, 0.2, 3)) if model == "GRM" \
            else list(center + rng.normal(0, 0.8, 3))
        extra.append(Item(item_id=f"pc{j:03d}", model=model, a=float(np.exp(rng.normal(0.2, 0.25))),  # type: ignore[arg-type]
                          b=[float(x) for x in b]))
    return base.model_copy(update={"items": [*base.items, *extra]})


def test_information_of_each_item_comes_from_its_model() -> None:
    bank = mixed_bank().engine
    assert bank.poly is not None and bank.poly_index.size == 50
    theta = np.array([-1.0, 0.0, 1.5])
    info = bank.information(theta)
    assert info[:, :150] == pytest.approx(information_4pl(theta[:, None], bank.params.subset(np.arange(150))), rel=1e-4)
    assert info[:, 150:] == pytest.approx(information_poly(theta, bank.poly), rel=1e-4)


def test_incremental_eap_equals_the_posterior_from_scratch() -> None:
    doc = mixed_bank()
    bank = doc.engine
    config = replace(TestPolicy(sympson_hetter=False).cat_config(), max_items=40)
    state = CatState.start(1, bank, config)
    served = [3, 151, 152, 40, 160, 199]
    answers = [1, 3, 0, 0, 2, 1]
    for item, x in zip(served, answers, strict=True):
        record_answer(state, bank, config, np.array([0]), np.array([item]), np.array([x]))
    nodes = config.quadrature.nodes
    log_post = -0.5 * nodes**2
    for item, x in zip(served, answers, strict=True):
        if item < 150:
            pr = bank.params
            p = pr.c[item] + (pr.d[item] - pr.c[item]) / (1 + np.exp(-pr.scale * pr.a[item] * (nodes - pr.b[item])))
            log_post += np.log(p if x == 1 else 1 - p)
        else:
            k = int(np.flatnonzero(bank.poly_index == item)[0])
            log_post += np.log(category_probabilities(nodes, bank.poly.subset([k]))[:, 0, x])  # type: ignore[union-attr]
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    theta = float(np.sum(w * nodes))
    assert state.theta[0] == pytest.approx(theta, abs=1e-9)
    assert state.se[0] == pytest.approx(float(np.sqrt(np.sum(w * (nodes - theta) ** 2))), abs=1e-9)


def test_simulation_answers_partial_credit_items_in_categories_and_measures() -> None:
    doc = mixed_bank()
    bank = doc.engine
    config = replace(TestPolicy(sympson_hetter=False).cat_config(), max_items=20)
    thetas = np.random.default_rng(8).normal(size=600)
    result = simulate(bank, config, thetas, seed=8, keep_responses=True)
    assert result.responses is not None
    _, item, x = result.responses
    partial = item >= 150
    assert partial.any() and (x[partial] >= 2).any() and x[partial].max() <= 3
    assert set(np.unique(x[~partial])) <= {0, 1}
    summary = result.summary(bank)
    assert summary["rmse"] < 0.4
    # partial-credit items carry more information per item: the CAT prefers them
    assert result.exposure[150:].mean() > result.exposure[:150].mean()


@pytest.mark.parametrize("change", [{"selection": "a_stratified"}])
def test_rules_that_need_right_wrong_items_say_so(change: dict[str, str]) -> None:
    bank = mixed_bank(40, 10).engine
    config = replace(TestPolicy(sympson_hetter=False).cat_config(), **change)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="partial-credit item"):
        simulate(bank, config, np.zeros(3), seed=1)


def test_bank_generate_mixes_models_and_simulate_runs_on_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mixed.json"
    assert main(["bank", "generate", "--items", "90", "--models", "3PL,GRM,GPCM", "--no-content",
                 "--out", str(out)]) == 0
    bank = ItemBank.load(out)
    assert [it.model for it in bank.items[:3]] == [None, "GRM", "GPCM"]
    assert all(len(it.thresholds) == 3 for it in bank.items if it.model)
    assert any(it.exposure_k < 1 for it in bank.items)  # exposure control computed on the mixed bank
    capsys.readouterr()
    assert main(["simulate", "--bank", str(out), "--examinees", "200", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["examinees"] == 200 and summary["rmse"] < 0.5
    responses = tmp_path / "r.csv"
    assert main(["responses", "generate", "--bank", str(out), "--examinees", "300", "--out", str(responses)]) == 0
    rows = [line.split(",") for line in responses.read_text().splitlines()[1:]]
    models = {it.item_id: it.model for it in bank.items}
    assert {int(x) for _, i, x in rows if models[i] is None} == {0, 1}
    assert {int(x) for _, i, x in rows if models[i] is not None} == {0, 1, 2, 3}
    assert main(["bank", "generate", "--items", "9", "--models", "3PL,NRM", "--out", str(out)]) == 2


def test_a_partial_credit_option_earns_its_category_and_credits_never_show() -> None:
    from irtcat.domain.generate import with_partial_credit
    from irtcat.domain.scoring import score_choice, shown_options, simulated_answer

    bank = with_partial_credit(generate_bank(12, "3PL", seed=2), ["3PL", "GRM", "GPCM"], seed=2)
    item = next(it for it in bank.items if it.credits is not None)
    assert item.kind == "choice" and item.key is None and sorted(item.credits) == [0, 1, 2, 3]  # type: ignore[arg-type]
    shown = shown_options("secret", 4, item)
    assert all("credit" not in text for _, text in shown)
    for label, text in shown:
        scored = score_choice(item, label, "secret", 4)
        assert scored.score == item.credits[item.options.index(text)]  # type: ignore[index, union-attr]
    rng = np.random.default_rng(5)
    earned = [score_choice(item, simulated_answer(bank, item.item_id, 3.0, shown, rng), "secret", 4).score
              for _ in range(200)]
    assert np.mean(earned) > 2.0  # a strong student mostly earns the top categories
    with pytest.raises(ValueError, match=r"credits must be categories 0\.\.3"):
        Item(item_id="q", model="GRM", b=[-1.0, 0.0, 1.0], options=["1", "2", "3", "4"], credits=[0, 1, 2, 2])
    with pytest.raises(ValueError, match=r"scored by credits \(options\) or credit_bands \(numeric entry\)"):
        Item(item_id="q", model="GRM", b=[0.0], options=["1", "2"], key=0)


def test_a_partial_credit_numeric_entry_earns_the_band_it_falls_in() -> None:
    """A numeric item with credit_bands [10, 2, 0]: exact earns 3, within 2 earns 2, within 10
    earns 1, beyond earns 0; simulated students send numbers in the band of the category they
    drew; the tablet's view says numeric and partial credit and carries neither answer nor bands;
    bands that do not narrow, or do not match the categories, are refused by name."""
    from irtcat.domain.generate import with_partial_credit
    from irtcat.domain.scoring import score_choice, simulated_answer, simulated_category_choice
    from irtcat.domain.session import ServedItem, new_session

    bank = with_partial_credit(generate_bank(12, "3PL", seed=2), ["3PL", "GRM", "GPCM"], seed=2)
    item = next(it for it in bank.items if it.credit_bands is not None)
    assert item.kind == "numeric" and item.model is not None and item.credit_bands == [10.0, 2.0, 0.0]
    assert item.answer_value is not None
    for entered, category in ((0.0, 3), (1.5, 2), (-2.0, 2), (7.0, 1), (-10.0, 1), (10.5, 0), (-50.0, 0)):
        assert score_choice(item, item.answer_value + entered, "secret", 1).score == category
    rng = np.random.default_rng(3)
    for category in range(4):
        for _ in range(20):
            sent = simulated_category_choice(item, [], category, rng)
            assert score_choice(item, sent, "secret", 1).score == category
    earned = [score_choice(item, simulated_answer(bank, item.item_id, 3.0, None, rng), "s", 1).score
              for _ in range(200)]
    assert np.mean(earned) > 2.0
    started = new_session("s1", "u1", TestPolicy(test_id="t"), bank, None)
    session = started.model_copy(update={"served": [ServedItem(seq=1, item_id=item.item_id)]})
    view = session.view(bank).model_dump_json()
    assert '"kind":"numeric"' in view and '"partial_credit":true' in view
    assert "credit_bands" not in view and "answer_value" not in view and str(item.answer_value) not in view
    with pytest.raises(ValueError, match="strictly narrowing"):
        Item(item_id="q", model="GPCM", b=[0.0, 1.0], answer_value=5.0, credit_bands=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"one band per category 1\.\.2"):
        Item(item_id="q", model="GPCM", b=[0.0, 1.0], answer_value=5.0, credit_bands=[1.0])
    with pytest.raises(ValueError, match="need a partial-credit model"):
        Item(item_id="q", answer_value=5.0, credit_bands=[1.0])


def test_kl_of_a_one_threshold_item_is_the_2pl_kl() -> None:
    from irtcat.irt.criteria import kl_information, kl_information_partial_credit
    from irtcat.irt.model import ItemParameters
    from irtcat.irt.polytomous import PolytomousItems

    a, b = np.array([0.8, 1.6]), np.array([-0.5, 1.0])
    theta, answered = np.array([-1.0, 0.3, 2.0]), np.array([1, 4, 9])
    poly = PolytomousItems.build(["GRM", "GPCM"], a, [[b[0]], [b[1]]])
    assert kl_information_partial_credit(theta, answered, poly) == pytest.approx(
        kl_information(theta, answered, ItemParameters.from_arrays(a=a, b=b)), rel=1e-6)


def test_kl_selection_and_sprt_classification_run_on_a_mixed_bank() -> None:
    from irtcat.irt.config import Classification

    bank = mixed_bank().engine
    config = replace(TestPolicy(sympson_hetter=False).cat_config(), selection="kl", se_threshold=None,
                     classification=Classification(cuts=(0.0,), method="sprt"))
    result = simulate(bank, config, np.random.default_rng(4).normal(size=300), seed=4)
    assert result.summary(bank)["stop_reasons"].get("classification", 0) > 150
    assert result.exposure[150:].sum() > 0  # KL serves partial-credit items too


def test_pattern_log_likelihood_uses_each_items_model() -> None:
    bank = mixed_bank().engine
    items = np.array([[3, 151, 160, -1]])
    x = np.array([[1.0, 3.0, 0.0, np.nan]])
    grid = np.array([-0.4, 0.7])
    got = bank.pattern_log_likelihood(items, x, grid)
    assert bank.poly is not None
    want = np.zeros(2)
    for g, t in enumerate(grid):
        pr = bank.params
        p3 = pr.c[3] + (pr.d[3] - pr.c[3]) / (1 + np.exp(-pr.scale * pr.a[3] * (t - pr.b[3])))
        cats = category_probabilities(np.array([t]), bank.poly)[0]
        want[g] = np.log(p3) + np.log(cats[1, 3]) + np.log(cats[10, 0])
    assert got[0] == pytest.approx(want)


def test_mle_wle_and_map_on_a_mixed_pattern() -> None:
    """MLE maximises the pattern likelihood (checked on a fine grid); WLE and MAP sit between
    it and the prior's pull as they should; the score is the likelihood's derivative."""
    from irtcat.irt.estimation import NormalPrior, estimate, pattern_log_likelihood
    from irtcat.irt.state import MixedPattern

    bank = mixed_bank().engine
    items = np.array([[3, 151, 160, 40, 175, -1]])
    x = np.array([[1.0, 2.0, 1.0, 0.0, 3.0, np.nan]])
    pattern = MixedPattern(bank, items)
    grid = np.linspace(-4, 4, 8001)
    ll = pattern_log_likelihood(np.nan_to_num(x), ~np.isnan(x), pattern, grid)[0]
    mle = estimate("MLE", x, pattern)
    assert not mle.fallback[0]
    assert mle.theta[0] == pytest.approx(grid[ll.argmax()], abs=2e-3)
    score = pattern.score_terms(np.array([0.37]), np.nan_to_num(x), ~np.isnan(x))[0][0]
    h = 1e-5
    numeric = (pattern_log_likelihood(np.nan_to_num(x), ~np.isnan(x), pattern, np.array([0.37 + h, 0.37 - h]))[0]
               @ np.array([1.0, -1.0])) / (2 * h)
    assert score == pytest.approx(numeric, rel=1e-5)
    map_ = estimate("MAP", x, pattern, NormalPrior(0.0, 1.0))
    assert abs(map_.theta[0]) < abs(mle.theta[0])  # shrunk toward the prior mean
    wle = estimate("WLE", x, pattern)
    assert np.isfinite(wle.theta[0]) and abs(wle.theta[0] - mle.theta[0]) < 0.5


@pytest.mark.parametrize("estimator", ["MLE", "WLE", "MAP"])
def test_every_estimator_runs_a_cat_on_a_mixed_bank(estimator: str) -> None:
    bank = mixed_bank().engine
    config = replace(TestPolicy(sympson_hetter=False).cat_config(), estimator=estimator, max_items=15,
                     se_threshold=None)
    result = simulate(bank, config, np.random.default_rng(6).normal(size=200), seed=6)
    assert np.all(np.isfinite(result.theta)) and result.summary(bank)["rmse"] < 0.5
