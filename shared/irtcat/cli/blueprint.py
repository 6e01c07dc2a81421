"""``irtcat blueprint check``, and what other commands say about a policy's blueprint: the
conformance ``irtcat simulate`` reports and the refusal ``irtcat bank publish`` gives a test
its bank cannot meet (docs/blueprints.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import CliError, emit

if TYPE_CHECKING:  # the command line imports its domain lazily (start-up time)
    import numpy as np

    from ..domain.bank import ItemBank
    from ..domain.policy import TestPolicy
    from ..irt.simulation import SimulationResult


def problems(verdict: dict[str, Any]) -> str:
    """The rules a bank cannot meet, in words (from :func:`check_blueprint`)."""
    parts = [f"{r['rule']} short by {r['by']:g}" for r in verdict["infeasible_rules"]]
    if verdict["short_by"]:
        parts.append(f"{verdict['short_by']} item(s) short of the length {verdict['length']}")
    return "; ".join(parts) or "no test of its length can be assembled"


def refuse_unmeetable(policy: TestPolicy, bank: ItemBank, test_id: str) -> None:
    """:class:`CliError` when ``bank`` cannot meet the blueprint of ``policy`` (before publishing)."""
    if policy.blueprint is None:
        return
    from ..domain.blueprint import check_blueprint

    verdict = check_blueprint(policy.blueprint, bank)
    if not verdict["feasible"]:
        raise CliError(f"the bank cannot meet the blueprint of {test_id}: {problems(verdict)} "
                       "(irtcat blueprint check says more); nothing published")


def blueprint_report(policy: TestPolicy, bank: ItemBank, result: SimulationResult, thetas: np.ndarray,
                     administered: Path | None) -> dict[str, Any]:
    """What ``irtcat simulate`` adds to its summary: per-rule conformance (with a blueprint) and
    the administered items written as NDJSON (with ``--administered``)."""
    out: dict[str, Any] = {}
    if policy.blueprint is not None:
        from ..domain.blueprint import conformance

        assert result.administered is not None
        out["blueprint"] = conformance(policy.blueprint, bank, result.administered)
        out["blueprint"]["tests_with_relaxed_rules"] = sum(1 for r in result.relaxed.values() if r)
    if administered:
        assert result.administered is not None
        ids = bank.engine.item_ids
        with open(administered, "w", encoding="utf-8") as fh:
            for k, row in enumerate(result.administered):
                fh.write(json.dumps({"examinee": k, "theta": float(thetas[k]),
                                     "items": [ids[j] for j in row if j >= 0]}) + "\n")
        out["administered"] = str(administered)
    return out


def _check(args: argparse.Namespace) -> int:
    from ..adapters.files import load_policy
    from ..domain.bank import ItemBank
    from ..domain.blueprint import check_blueprint

    bank = ItemBank.load(args.bank)
    policy = load_policy(args.policy)
    if policy.blueprint is None:
        raise CliError(f"{args.policy} has no blueprint")
    verdict = check_blueprint(policy.blueprint, bank)
    if verdict["feasible"]:
        human = (f"the bank can meet the blueprint: at least {verdict['disjoint_tests_at_least']} tests without a "
                 "shared item")
    else:
        human = f"the bank cannot meet the blueprint: {problems(verdict)}"
    if verdict["enemies_not_in_bank"]:
        human += f"; enemies not in the bank: {', '.join(verdict['enemies_not_in_bank'][:5])}"
    emit(args, verdict, human)
    return 0 if verdict["feasible"] else 2


def add_blueprint_commands(sub: Any) -> None:
    """``irtcat blueprint check``."""
    bp = sub.add_parser("blueprint", help="test blueprints").add_subparsers(dest="blueprint_command", required=True)
    bc = bp.add_parser("check", help="can the bank meet the policy's blueprint (exit 2 if not)")
    bc.add_argument("--bank", type=Path, required=True)
    bc.add_argument("--policy", type=Path, required=True, help="TestPolicy JSON with a blueprint")
    bc.add_argument("--json", action="store_true")
    bc.set_defaults(fn=_check)
