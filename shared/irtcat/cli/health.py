"""``irtcat itemfit``, ``irtcat dif``, ``irtcat link`` and ``irtcat drift``: a bank's health from its response
data (docs/health.md; the statistics are in :mod:`irtcat.irt.health`)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, Literal

from .common import CliError, emit


def _num(x: float) -> float | None:
    return None if math.isnan(x) else round(float(x), 6)


def _load(bank_path: Path, responses: Path) -> tuple[Any, list[str], list[int], Any]:
    from ..adapters.calibration_io import read_long_responses
    from ..domain.bank import ItemBank
    from ..domain.health import response_matrix

    bank = ItemBank.load(bank_path)
    students, items, values = read_long_responses(responses, categories=True)
    people, positions, matrix = response_matrix(students, items, values, bank)
    return bank, people, positions, matrix


def _itemfit(args: argparse.Namespace) -> int:
    from ..domain.health import bank_curves
    from ..irt.health.common import normal_grid
    from ..irt.health.itemfit import item_fit

    bank, _, positions, matrix = _load(args.bank, args.responses)
    theta, w = normal_grid()
    fits, note = item_fit(matrix, bank_curves(bank, positions, theta), w, args.mincell, args.adjust, args.alpha)
    rows = [{"item_id": bank.items[j].item_id, "S_X2": _num(f.s_x2), "df": f.df or None, "p": _num(f.p),
             "rmsd": _num(f.rmsd), "flagged": f.flagged} for j, f in zip(positions, fits, strict=True)]
    summary: dict[str, Any] = {"items": rows, "adjust": args.adjust, "alpha": args.alpha, "mincell": args.mincell,
                               "note": note}
    flagged = [r["item_id"] for r in rows if r["flagged"]]
    human = "\n".join([f"{'item':<16}{'S-X2':>10}{'df':>5}{'p':>10}{'RMSD':>8}",
                       *(f"{r['item_id']:<16}{_fmt(r['S_X2'])}{r['df'] or '':>5}{_fmt(r['p'])}{_fmt(r['rmsd'], 8)}"
                         f"{'  flagged' if r['flagged'] else ''}" for r in rows),
                       note or f"{len(flagged)} item(s) flagged at alpha {args.alpha} ({args.adjust} adjustment)"])
    emit(args, summary, human)
    return 0


def _fmt(x: float | None, width: int = 10) -> str:
    return f"{'-':>{width}}" if x is None else f"{x:>{width}.3f}"


def _dif(args: argparse.Namespace) -> int:
    from ..domain.health import dif_study, focal_and_reference, read_groups

    bank, people, positions, matrix = _load(args.bank, args.responses)
    values = read_groups(args.groups, args.variable)
    focal_value, reference_value = focal_and_reference(values, args.focal, args.reference)
    try:
        study = dif_study(bank, people, positions, matrix, values, focal_value, reference_value, strata=args.strata,
                          adjust=args.adjust, alpha=args.alpha, likelihood_ratio=not args.no_lr)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    rows = [{k: v for k, v in row.items() if k != "curve"} for row in study["items"]]
    summary = {"variable": args.variable, **{k: v for k, v in study.items() if k != "items"}, "items": rows}
    human = "\n".join([f"{args.variable}: focal {focal_value} ({summary['focal_n']}) vs reference {reference_value} "
                       f"({summary['reference_n']}), matched on {summary['matching']}",
                       f"{'item':<16}{'MH delta':>10}{'ETS':>5}{'LR chi2':>10}{'LR p':>10}",
                       *(f"{r['item_id']:<16}{_fmt(r['mh_delta'])}{r['ets_class'] or '-':>5}{_fmt(r['lr_chi2'])}"
                         f"{_fmt(r['lr_p'])}{'  flagged' if r['flagged'] else ''}" for r in rows)])
    emit(args, summary, human)
    return 0


def _link(args: argparse.Namespace) -> int:
    from ..domain.bank import ItemBank
    from ..domain.health import link_items, rescaled
    from ..irt.health.linking import link

    old, new = ItemBank.load(args.from_), ItemBank.load(args.to)
    new_ids = set(new.engine.index)
    common = [it.item_id for it in old.items if it.item_id in new_ids
              and (it.model is None) == (new.items[new.engine.index[it.item_id]].model is None)]
    result = link(link_items(old, common), link_items(new, common), args.method, args.replications, args.seed)
    summary: dict[str, Any] = {"method": result.method, "A": result.A, "B": result.B, "se_A": result.se_A,
                               "se_B": result.se_B, "anchors": result.anchors}
    human = (f"{result.method}: theta_old = {result.A:.4f} (SE {result.se_A:.4f}) theta_new + {result.B:.4f} "
             f"(SE {result.se_B:.4f}), from {result.anchors} common items")
    if args.apply:
        out = rescaled(new, result.A, result.B)
        out.dump(args.apply)
        summary["applied"] = str(args.apply)
        human += f"; wrote {args.apply} on {old.bank_id} v{old.version}'s scale"
    emit(args, summary, human)
    return 0


def _drift(args: argparse.Namespace) -> int:
    import numpy as np

    from ..domain.health import link_items
    from ..irt.calibration import CategoryData, ResponseData
    from ..irt.calibration.engine import calibrate_mixed
    from ..irt.health.common import MISSING
    from ..irt.health.drift import drift
    from ..irt.health.linking import LinkItem

    bank, _, positions, matrix = _load(args.bank, args.responses)
    engine = bank.engine
    use = [k for k, j in enumerate(positions) if engine.operational[j]
           and int((matrix[:, k] != MISSING).sum()) >= args.min_responses]
    if len(use) < 5:
        raise CliError(f"{len(use)} operational item(s) with {args.min_responses} or more responses: drift needs "
                       "at least 5")
    rw = [k for k in use if bank.items[positions[k]].model is None]
    pc = [k for k in use if bank.items[positions[k]].model is not None]

    def long(cols: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = matrix[:, cols]
        rows, where = np.nonzero(x != MISSING)
        return rows, where, x[rows, where]

    model: Literal["1PL", "2PL", "3PL"] = bank.model if bank.model in ("1PL", "2PL", "3PL") else "2PL"
    # one calibration of every item, free (right/wrong and partial credit share each person's posterior)
    fit = calibrate_mixed(ResponseData.from_long(*long(rw), n_persons=matrix.shape[0], n_items=len(rw)) if rw else None,
                          CategoryData.from_long(*long(pc), n_persons=matrix.shape[0], n_items=len(pc)) if pc else None,
                          model=model, partial_models=[str(bank.items[positions[k]].model) for k in pc] or "GRM",
                          scale=1.0, standard_errors=False)
    fresh = []
    if fit.right_wrong is not None:
        r = fit.right_wrong
        fresh += [LinkItem(float(a), (float(b),), float(c)) for a, b, c in zip(r.a, r.b, r.c, strict=True)]
    if fit.partial is not None:
        p = fit.partial
        fresh += [LinkItem(float(a), tuple(float(t) for t in row if not np.isnan(t)),
                           model=str(bank.items[positions[k]].model))
                  for k, a, row in zip(pc, p.a, p.thresholds, strict=True)]
    ids = [bank.items[positions[k]].item_id for k in rw + pc]
    on_bank = link_items(bank, ids)
    result = drift(on_bank, fresh, args.cutoff, args.min_shift)
    rows_out = [{"item_id": i, "b_bank": round(float(np.mean(it.b)), 4), "d_b": round(float(d), 4),
                 "z": round(float(z), 3), "area": round(float(ar), 4), "flagged": bool(f)}
                for i, it, d, z, ar, f in zip(ids, on_bank, result.d_b, result.z, result.area, result.flagged,
                                              strict=True)]
    summary = {"A": result.A, "B": result.B, "items": rows_out, "cutoff": args.cutoff, "min_shift": args.min_shift,
               "drifting": [r["item_id"] for r in rows_out if r["flagged"]]}
    human = (f"{len(ids)} operational items re-estimated ({model}{' and partial credit' if pc else ''}) and linked: "
             f"theta_bank = {result.A:.3f} theta_new + {result.B:.3f}; drifting: "
             f"{', '.join(summary['drifting']) or 'none'}")
    emit(args, summary, human)
    return 0


def health_report(args: argparse.Namespace) -> int:
    """``irtcat report --history DIR --health --bank B``: reliability, item statistics and flagged sessions."""
    from ..analytics.health import build_health
    from ..domain.bank import ItemBank

    if args.bank is None:
        raise CliError("--health needs --bank (the bank the history was answered on)")
    out = build_health(args.history, ItemBank.load(args.bank), args.out)
    tests = "; ".join(f"{t['test_id']}: reliability {t['empirical_reliability']:.3f} over {t['sessions']} sessions"
                      for t in out["tests"])
    human = (f"{out['answers']} answers, {out['sessions']} sessions; {tests or 'no finished session'}; "
             f"{len(out['flagged_sessions'])} flagged session(s); page: {out['html']}")
    emit(args, out, human)
    return 0


def add_health_commands(sub: Any) -> None:
    """Register ``itemfit``, ``dif``, ``link`` and ``drift``."""
    f = sub.add_parser("itemfit", help="item fit: S-X2 (Orlando & Thissen) and RMSD per item")
    f.add_argument("--bank", type=Path, required=True)
    f.add_argument("--responses", type=Path, required=True, help="CSV or Parquet: student_id,item_id,response")
    f.add_argument("--mincell", type=float, default=1.0, help="smallest expected cell count before score groups merge")
    f.add_argument("--adjust", choices=["bonferroni", "bh", "none"], default="bh")
    f.add_argument("--alpha", type=float, default=0.05)
    f.add_argument("--json", action="store_true")
    f.set_defaults(fn=_itemfit)

    d = sub.add_parser("dif", help="differential item functioning: Mantel-Haenszel (ETS A/B/C) and IRT-LR")
    d.add_argument("--bank", type=Path, required=True)
    d.add_argument("--responses", type=Path, required=True, help="CSV or Parquet: student_id,item_id,response")
    d.add_argument("--groups", type=Path, required=True, help="CSV: student_id,<variable>,...")
    d.add_argument("--variable", required=True)
    d.add_argument("--focal", required=True)
    d.add_argument("--reference", help="default: the most common other value")
    d.add_argument("--strata", type=int, default=20, help="ability strata on adaptive data")
    d.add_argument("--adjust", choices=["bonferroni", "bh", "none"], default="bh")
    d.add_argument("--alpha", type=float, default=0.05)
    d.add_argument("--no-lr", action="store_true", help="Mantel-Haenszel only")
    d.add_argument("--json", action="store_true")
    d.set_defaults(fn=_dif)

    k = sub.add_parser("link", help="linking constants between two calibrations of common items")
    k.add_argument("--from", dest="from_", type=Path, required=True, help="the bank whose scale is kept (old)")
    k.add_argument("--to", type=Path, required=True, help="the bank to re-express (new)")
    k.add_argument("--method", choices=["stocking-lord", "haebara", "mean-sigma", "mean-mean"],
                   default="stocking-lord")
    k.add_argument("--replications", type=int, default=200, help="bootstrap resamples of the common items (SEs)")
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--apply", type=Path, help="write the new bank on the old scale here")
    k.add_argument("--json", action="store_true")
    k.set_defaults(fn=_link)

    r = sub.add_parser("drift", help="item parameter drift: operational items re-estimated, linked and compared")
    r.add_argument("--bank", type=Path, required=True)
    r.add_argument("--responses", type=Path, required=True, help="CSV or Parquet: student_id,item_id,response")
    r.add_argument("--cutoff", type=float, default=2.576, help="|robust z| above which an item drifts")
    r.add_argument("--min-shift", type=float, default=0.2, help="smallest b shift (logits) that counts")
    r.add_argument("--min-responses", type=int, default=200, help="responses an item needs to be checked")
    r.add_argument("--json", action="store_true")
    r.set_defaults(fn=_drift)

