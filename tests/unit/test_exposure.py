"""Allocation prices: the exposure program's duals, and max-info ranking by priced information."""

import numpy as np
import pytest
from irtcat.irt.config import CatConfig
from irtcat.irt.datagen import generate_parameters
from irtcat.irt.exposure import allocation_prices
from irtcat.irt.model import information
from irtcat.irt.selection import select_next
from irtcat.irt.state import PRETEST, Bank, CatState


def test_prices_are_the_duals_of_the_exposure_program():
    """Strong duality: giving every grid theta its ``length`` largest I - lambda reproduces the
    LP's allocation, so every item lands at or under the cap and every priced item at the cap
    (up to the few grid points where the LP splits an item; a point weighs at most 0.014)."""
    bank = Bank(generate_parameters(120, "3PL", seed=3))
    cap, length, nodes = 0.2, 10, 201
    allocation = allocation_prices(bank, cap, length, nodes=nodes)
    grid = np.linspace(-3.5, 3.5, nodes)
    weight = np.exp(-grid**2 / 2)
    weight /= weight.sum()
    priced = bank.information(grid) - allocation.prices[None, :]
    chosen = np.argsort(-priced, axis=1)[:, :length]
    exposure = np.zeros(len(bank))
    np.add.at(exposure, chosen.ravel(), np.repeat(weight, length))
    slack = 2 * weight.max()
    assert exposure.max() <= cap + slack
    binding = allocation.prices > 0
    assert binding.sum() >= 10 and exposure[binding].min() >= cap - slack
    # without the prices the same rule breaks the cap by far
    plain = np.zeros(len(bank))
    np.add.at(plain, np.argsort(-bank.information(grid), axis=1)[:, :length].ravel(), np.repeat(weight, length))
    assert plain.max() > 2 * cap


def test_the_bound_is_one_without_a_binding_cap_and_grows_as_the_cap_tightens():
    bank = Bank(generate_parameters(150, "2PL", seed=4))
    loose = allocation_prices(bank, 1.0, 10)
    assert np.all(loose.prices == 0) and loose.bound == pytest.approx(1.0, abs=1e-9)
    bounds = [allocation_prices(bank, cap, 10).bound for cap in (0.4, 0.25, 0.15)]
    assert 1.0 < bounds[0] < bounds[1] < bounds[2]


def test_a_blueprints_rules_raise_the_bound_only_when_they_bind():
    """Count and sum rules join the program at every theta: a rule every best test meets anyway
    leaves the bound as it was; one that forces weak items in (5 of the 40 least informative at 0)
    raises it, and each theta's allocation then holds the rule; rules no allocation meets are
    refused."""
    from irtcat.irt.shadow import CountRule, ShadowSpec, SumRule

    bank = Bank(generate_parameters(150, "2PL", seed=4))
    plain = allocation_prices(bank, 0.25, 10, nodes=41)
    weak = np.zeros(150, bool)
    weak[np.argsort(bank.information(np.array([0.0]))[0])[:40]] = True
    slack = ShadowSpec(length=10, counts=(CountRule("all", np.ones(150, bool), lo=0, hi=10),),
                       sums=(SumRule("w", np.ones(150), hi=10.0),))
    assert allocation_prices(bank, 0.25, 10, nodes=41, rules=slack).bound == pytest.approx(plain.bound, rel=1e-6)
    forced = ShadowSpec(length=10, counts=(CountRule("weak", weak, lo=5),))
    held = allocation_prices(bank, 0.25, 10, nodes=41, rules=forced)
    assert held.bound > plain.bound * 1.05
    impossible = ShadowSpec(length=10, counts=(CountRule("weak", weak, lo=11),))
    with pytest.raises(ValueError, match="the allocation program failed"):
        allocation_prices(bank, 0.25, 10, nodes=41, rules=impossible)


def test_only_operational_items_are_priced_and_an_unreachable_cap_is_refused():
    status = np.zeros(60, dtype=np.int8)
    status[:30] = PRETEST
    bank = Bank(generate_parameters(60, "2PL", seed=5), status=status)
    prices = allocation_prices(bank, 0.3, 5).prices
    assert np.all(prices[:30] == 0) and np.any(prices[30:] > 0)
    with pytest.raises(ValueError, match=r"30 operational items cannot give 10 items each at exposure 0\.3"):
        allocation_prices(bank, 0.3, 10)


@pytest.mark.parametrize("items", [300, 1500])  # 1500: the pruned single-examinee scan applies without prices
def test_max_info_ranks_by_priced_information_under_exposure_control_only(items):
    params = generate_parameters(items, "3PL", seed=6)
    theta = np.array([0.4])
    info = information(theta[:, None], params)[0]
    price = np.zeros(items)
    price[np.argsort(-info)[:3]] = 10.0  # the three most informative items are priced out
    bank = Bank(params, exposure_price=price)
    assert bank.priced
    for control, expected in ((True, int(np.argmax(info - price))), (False, int(np.argmax(info)))):
        config = CatConfig(randomesque=1, sympson_hetter=control)
        state = CatState.start(1, bank, config, theta0=theta)
        assert select_next(state, bank, config, np.array([0]), np.random.default_rng(0))[0] == expected
    assert int(np.argmax(info - price)) != int(np.argmax(info))


def test_a_bank_too_small_for_the_cap_gets_the_lottery_alone():
    from irtcat.domain.exposure import with_exposure_control
    from irtcat.domain.generate import generate_bank
    from irtcat.domain.policy import StoppingPolicy, TestPolicy

    policy = TestPolicy(stopping=StoppingPolicy(max_items=10, se_threshold=None))
    small, _ = with_exposure_control(generate_bank(20, "2PL", seed=3, with_content=False), policy,
                                     examinees=300, rounds=3)
    assert not small.engine.priced and small.engine.exposure_k.min() < 1.0
    large, _ = with_exposure_control(generate_bank(100, "2PL", seed=3, with_content=False), policy,
                                     examinees=300, rounds=3)
    assert large.engine.priced
    unpriced, _ = with_exposure_control(generate_bank(100, "2PL", seed=3, with_content=False), policy,
                                        examinees=300, rounds=3, prices=False)
    assert not unpriced.engine.priced
