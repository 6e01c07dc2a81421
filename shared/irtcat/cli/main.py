"""The ``irtcat`` command line. Every command that computes a result can print it as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .blueprint import add_blueprint_commands
from .common import DATA_DIR, CliError, emit, stack_outputs
from .health import add_health_commands
from .items import add_item_commands, add_student_commands

Handler = Callable[[argparse.Namespace], int]




def _bank_generate(args: argparse.Namespace) -> int:
    from ..domain.generate import generate_bank

    if args.items < 1 or args.pretest < 0:
        raise CliError("--items must be >= 1 and --pretest >= 0")
    areas = [a.strip() for a in args.content_areas.split(",") if a.strip()] if args.content_areas else None
    bank = generate_bank(
        args.items, args.model, args.seed, args.bank_id, args.version, args.pretest, areas,
        with_content=not args.no_content, scale=1.702 if args.normal_metric else 1.0,
    )
    if args.models:
        from ..domain.generate import with_partial_credit

        bank = with_partial_credit(bank, [m.strip() for m in args.models.split(",") if m.strip()], args.seed)
    controlled = ""
    if not args.no_exposure_control:
        from ..domain.exposure import with_exposure_control

        bank, _ = with_exposure_control(bank, seed=args.seed)
        limited = sum(it.exposure_k < 1 for it in bank.items)
        priced = sum(it.exposure_price > 0 for it in bank.items)
        controlled = (f"; exposure control for the default policy: {priced} items priced, "
                      f"{limited} with a Sympson-Hetter parameter")
    bank.dump(args.out)
    emit(args, {"bank": str(args.out), "items": len(bank.items), "model": bank.model},
          f"wrote {len(bank.items)} items ({bank.model}) to {args.out}{controlled}")
    return 0


def _responses_generate(args: argparse.Namespace) -> int:
    from ..adapters.files import load_thetas, write_responses_csv
    from ..domain.bank import ItemBank
    from ..irt.datagen import generate_responses

    bank = ItemBank.load(args.bank)
    if args.thetas:
        thetas = load_thetas(args.thetas)
    else:
        if args.examinees < 1:
            raise CliError("--examinees must be >= 1")
        thetas = np.random.default_rng(args.seed).normal(0.0, 1.0, args.examinees)
    engine = bank.engine
    usable = np.flatnonzero(engine.status != 2)
    params = engine.params.subset(usable)
    person, item, resp = generate_responses(params, thetas, args.seed + 1, args.items_per_person)
    if engine.poly is not None:  # partial-credit items answer in a category of their own model
        from ..irt.polytomous import draw_responses

        at, is_poly = engine.poly_positions(usable[item])
        if is_poly.any():
            resp[is_poly] = draw_responses(thetas[person[is_poly]], engine.poly.subset(at[is_poly]),
                                           np.random.default_rng(args.seed + 2))
    rows = [(f"s{p:06d}", engine.item_ids[usable[i]], int(x)) for p, i, x in zip(person, item, resp, strict=True)]
    write_responses_csv(args.out, rows)
    if args.thetas_out:
        Path(args.thetas_out).write_text("\n".join(f"{t:.6f}" for t in thetas) + "\n", encoding="utf-8")
    emit(args, {"responses": str(args.out), "rows": len(rows), "examinees": int(thetas.size)},
          f"wrote {len(rows)} responses of {thetas.size} examinees to {args.out}")
    return 0


def _progress(total: int, label: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    try:
        from tqdm import tqdm
    except ImportError:  # the progress bar is a nicety, never a requirement
        return (lambda k: None), (lambda: None)
    bar = tqdm(total=total, desc=label, file=sys.stderr, unit="examinee", leave=False,
               disable=not sys.stderr.isatty())
    return bar.update, bar.close


def _simulate(args: argparse.Namespace) -> int:
    from ..adapters.files import load_policy, load_thetas
    from ..domain.bank import ItemBank
    from ..irt.simulation import simulate

    bank = ItemBank.load(args.bank)
    policy = load_policy(args.policy)
    if args.thetas:
        thetas = load_thetas(args.thetas)
    else:
        if args.examinees < 1:
            raise CliError("--examinees must be >= 1")
        thetas = np.random.default_rng(args.seed).normal(policy.prior.mean, policy.prior.sd, args.examinees)
    engine = bank.engine
    if not engine.operational.any():
        raise CliError("the bank has no operational items")
    uncontrolled = policy.exposure_problem(bank)
    if uncontrolled:
        print(f"irtcat: warning: {uncontrolled}", file=sys.stderr)
    update, close = _progress(thetas.size, "simulating")
    try:
        result = simulate(engine, policy.cat_config(bank), thetas, seed=args.seed, progress=update)
    finally:
        close()
    from .blueprint import blueprint_report

    summary = result.summary(engine)
    summary.update(blueprint_report(policy, bank, result, thetas, args.administered))
    if args.plots:
        from ..adapters.plots import simulation_plots

        summary["plots"] = [str(p) for p in simulation_plots(result, summary, args.plots)]
    human = (
        f"examinees {summary['examinees']}  mean length {summary['mean_length']:.2f}  "
        f"bias {summary['bias']:+.3f}  RMSE {summary['rmse']:.3f}  mean SE {summary['mean_se']:.3f}  "
        f"r {summary['correlation'] or float('nan'):.3f}  max exposure {summary['max_exposure']:.3f}  "
        f"never used {summary['never_used_share']:.3f}  overlap {summary['overlap_rate']:.3f}  "
        f"stops {summary['stop_reasons']}  {summary['seconds']:.2f}s"
    )
    if "blueprint" in summary:
        human += "\nblueprint rules met (share of tests, worst deviation): " + ", ".join(
            f"{r['rule']} {r['met']:.3f} ({r['worst']:g})" for r in summary["blueprint"]["rules"])
    emit(args, summary, human)
    return 0


def _exposure(args: argparse.Namespace) -> int:
    from ..adapters.files import load_policy
    from ..domain.bank import ItemBank
    from ..domain.exposure import with_exposure_control

    bank = ItemBank.load(args.bank)
    policy = load_policy(args.policy)
    if args.target is not None:
        policy = policy.model_copy(update={"max_exposure": args.target})
    out, history = with_exposure_control(bank, policy, args.examinees, args.iterations, args.seed)
    out.dump(args.out)
    summary = {"bank": str(args.out), "max_exposure": policy.max_exposure, "max_exposure_by_round": history,
               "controlled_items": sum(it.exposure_k < 1 for it in out.items),
               "priced_items": sum(it.exposure_price > 0 for it in out.items)}
    emit(args, summary, f"wrote allocation prices for {summary['priced_items']} items and Sympson-Hetter "
          f"parameters for {summary['controlled_items']} items to {args.out}; max exposure by round: "
          f"{', '.join(f'{h:.3f}' for h in history)}")
    return 0


def _bank_publish(args: argparse.Namespace) -> int:
    from ..adapters.aws import S3BankStore, Settings
    from ..adapters.files import load_policy
    from ..domain.bank import ItemBank
    from ..domain.policy import TestDefinition

    bank = ItemBank.load(args.bank)
    unscorable = [it.item_id for it in bank.items if it.kind is None and it.status == "operational"]
    if unscorable:
        raise CliError(f"{len(unscorable)} operational item(s) without a scoring rule ({', '.join(unscorable[:3])}): "
                       "the session API could not score them (options with a key or credits, or an answer value)")
    store = S3BankStore(Settings(table_name="-", bank_bucket=args.bucket, history_stream="-", history_bucket="-"))
    policy = load_policy(args.policy) if args.test_id else None
    if policy is not None:
        from .blueprint import refuse_unmeetable
        from .items import ensure_exposure_control

        refuse_unmeetable(policy, bank, args.test_id)
        bank = ensure_exposure_control(bank, policy, args.bank)
    from ..importer.build import media_dir

    media = store.put_media(bank.bank_id, media_dir(args.bank))
    store.publish(bank, make_current=not args.no_current)
    summary: dict[str, Any] = {"bucket": args.bucket, "bank_id": bank.bank_id, "version": bank.version,
                               "current": not args.no_current, "media_files": media}
    if policy is not None:
        store.put_test(TestDefinition(test_id=args.test_id, bank_id=bank.bank_id,
                                      policy=policy.model_copy(update={"test_id": args.test_id})))
        summary["test_id"] = args.test_id
    emit(args, summary, f"published {bank.bank_id} v{bank.version} to s3://{args.bucket}"
          + (f" and test {args.test_id}" if args.test_id else ""))
    return 0


def _calibrate_partial_credit(args: argparse.Namespace) -> int:
    """``--model GRM|GPCM`` without a bank: every item in the responses, in that model."""
    from ..adapters.calibration_io import read_long_responses
    from ..domain.calibration_bank import partial_credit_bank
    from ..irt.calibration import CategoryData, calibrate_polytomous

    if args.fixed is not None:
        raise CliError(f"--model {args.model}: --fixed operational needs --bank (a bank of partial-credit items "
                       "from scratch takes neither)")
    students, item_col, response = read_long_responses(args.responses, categories=True)
    persons: dict[str, int] = {}
    person = np.array([persons.setdefault(s, len(persons)) for s in students], dtype=np.int64)
    item_ids = sorted(set(item_col))
    index = {item_id: j for j, item_id in enumerate(item_ids)}
    data = CategoryData.from_long(person, np.array([index[i] for i in item_col], dtype=np.int64), response,
                                  len(persons), len(item_ids), item_ids)
    settings = _em_settings(args)
    result = calibrate_polytomous(data, args.model, priors=_partial_priors(args.priors), n_nodes=settings.n_nodes,
                                  max_cycles=settings.max_cycles, tol=settings.tol)
    bank = partial_credit_bank(result, item_ids, args.bank_id or "calibrated", args.version or 1, len(persons))
    bank.dump(args.out)
    summary = {**result.summary(), "n_persons": len(persons), "out": str(args.out), "bank_id": bank.bank_id,
               "version": bank.version, "estimated": item_ids, "anchored": False}
    _write_report(args, summary, [it.model_dump(exclude_none=True) for it in bank.items])
    human = (f"{args.model}: {len(item_ids)} items from {summary['n_responses']} responses of {len(persons)} "
             f"persons in {result.cycles} cycles ({'converged' if result.converged else 'NOT converged'}, "
             f"{result.seconds:.2f}s); -2LL {summary['minus_2ll']:.1f}, AIC {summary['aic']:.1f}, "
             f"BIC {summary['bic']:.1f}; SE: {result.se_method}; wrote {args.out}")
    emit(args, summary, human)
    return 0


def _write_report(args: argparse.Namespace, summary: dict[str, Any], items: list[dict[str, Any]]) -> None:
    """``--report``: the run's summary and the per-item rows, as JSON."""
    if args.report:
        Path(args.report).write_text(json.dumps({"summary": summary, "items": items}, indent=1))


def _partial_priors(value: str) -> Any:
    """``--priors`` for partial-credit items: the slope and threshold settings (a c prior has no
    meaning for them and is dropped)."""
    from dataclasses import replace

    return replace(_priors_option(value, "2PL"), c=None)


def _calibrate_bank_with_partial_credit(args: argparse.Namespace, base: Any) -> int:
    """``--bank`` with partial-credit items: one joint EM, each item in its own model (the
    right/wrong ones in ``--model`` 1PL/2PL/3PL). Estimated: every item, or with ``--fixed
    operational`` the pretest ones (``--model GRM|GPCM``: only that model's pretest items);
    every other item keeps its parameters and informs each person's posterior (MEM)."""
    from ..adapters.calibration_io import read_long_responses
    from ..domain.calibration_bank import mixed_bank
    from ..irt.calibration import CalibModel, CategoryData, ResponseData, calibrate_mixed
    from ..irt.estimation import Quadrature

    partial_only = args.model in ("GRM", "GPCM")
    if partial_only and args.fixed is None:
        raise CliError(f"--model {args.model} with --bank estimates that model's pretest items against the "
                       "others: add --fixed operational (or give --model 1PL/2PL/3PL to estimate every item, "
                       "each in its own model)")
    if args.method != "mem" or args.latent != "fixed":
        raise CliError("a bank with partial-credit items is calibrated by MEM with a fixed N(0, 1) latent "
                       "distribution (--method mem, --latent fixed)")
    chosen = [it for it in base.items if args.fixed is None or it.status == "pretest"]
    if partial_only:
        chosen = [it for it in chosen if it.model == args.model]
    if not chosen:
        raise CliError(f"the bank has no pretest {args.model + ' ' if partial_only else ''}items to calibrate")
    students, item_col, response = read_long_responses(args.responses, categories=True)
    index = base.engine.index
    unknown = sorted({i for i in item_col if i not in index})
    if unknown:
        raise CliError(f"{len(unknown)} item id(s) not in the bank: {', '.join(unknown[:5])}")
    persons: dict[str, int] = {}
    person = np.array([persons.setdefault(s, len(persons)) for s in students], dtype=np.int64)
    item_of = np.array([index[i] for i in item_col], dtype=np.int64)
    categories = base.engine.categories()
    bad = np.flatnonzero(response >= categories[item_of])
    if bad.size:
        k = int(bad[0])
        raise CliError(f"response {int(response[k])} to item {item_col[k]} (line {k + 2}) is not one of its "
                       f"categories 0..{int(categories[item_of[k]]) - 1}")
    def family(ids: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The answers to ``ids``: person, the item's position in ``ids``, response."""
        position = np.full(len(base.items), -1)
        position[[index[i] for i in ids]] = np.arange(len(ids))
        rows = position[item_of] >= 0
        return person[rows], position[item_of[rows]], response[rows]

    # a partial-credit item whose thresholds the data cannot identify is left out, with the reason
    partial_all = [it.item_id for it in chosen if it.model is not None]
    _, position, category = family(partial_all)
    unusable = CategoryData.unusable(position, category, len(partial_all),
                                     np.array([categories[index[i]] for i in partial_all], dtype=np.int64),
                                     args.min_responses)
    left_out = {partial_all[j]: why for j, why in unusable.items()}
    right_wrong_ids = [it.item_id for it in chosen if it.model is None]
    partial_ids = [i for i in partial_all if i not in left_out]
    free = np.zeros(len(base.items), dtype=bool)
    free[[index[i] for i in right_wrong_ids + partial_ids]] = True
    # every other item anchors the posteriors, but a left-out one: its values are provisional
    fixed = ~free
    fixed[[index[i] for i in left_out]] = False
    anchored = fixed[item_of]
    n = len(persons)
    anchors = None
    if anchored.any():
        anchors = base.engine.answers_log_likelihood(person[anchored], item_of[anchored], response[anchored], n,
                                                     Quadrature(_em_settings(args).n_nodes, -6.0, 6.0))

    rw_model: CalibModel = args.model if not partial_only else "2PL"
    right_wrong = ResponseData.from_long(*family(right_wrong_ids), n, len(right_wrong_ids)) if right_wrong_ids else None
    partial = CategoryData.from_long(*family(partial_ids), n, len(partial_ids), partial_ids,
                                     np.array([categories[index[i]] for i in partial_ids])) if partial_ids else None
    if right_wrong is None and partial is None:
        raise CliError(f"nothing to estimate: {'; '.join(f'{i}: {why}' for i, why in list(left_out.items())[:5])}")
    models = {it.item_id: str(it.model) for it in base.items if it.model is not None}
    result = calibrate_mixed(right_wrong, partial, model=rw_model, partial_models=[models[i] for i in partial_ids],
                             priors=_priors_option(args.priors, rw_model), partial_priors=_partial_priors(args.priors),
                             anchors=anchors, settings=_em_settings(args),
                             min_responses=args.min_responses)
    bank, report = mixed_bank(base, result, right_wrong_ids, partial_ids, args.bank_id or base.bank_id,
                              args.version or base.version + 1, n, args.promote_se, args.promote_n,
                              args.promote_rmsd)
    if left_out:
        notes = {i: f"left out: {why}" for i, why in left_out.items()}
        bank = bank.model_copy(update={"items": [it.model_copy(update={"calibration_note": notes[it.item_id]})
                                                 if it.item_id in notes else it for it in bank.items]})
    bank.dump(args.out)
    rw_left = {right_wrong_ids[j]: why for j, why in result.right_wrong.left_out.items()} if result.right_wrong else {}
    summary = {**result.summary(), "n_persons": n, "out": str(args.out), "bank_id": bank.bank_id,
               "version": bank.version, "estimated": [i for i in right_wrong_ids if i not in rw_left] + partial_ids,
               "anchored": anchors is not None, "left_out": {**rw_left, **left_out}, "promoted": report["promoted"],
               "status_counts": report["status_counts"]}
    _write_report(args, summary, report["items"])
    human = (f"{summary['model']}: {len(summary['estimated'])} items estimated from {summary['n_responses']} "
             f"responses of {n} persons{' (the other items fixed)' if anchors is not None else ''} in "
             f"{result.cycles} cycles ({'converged' if result.converged else 'NOT converged'}, "
             f"{result.seconds:.2f}s); -2LL {summary['minus_2ll']:.1f}, AIC {summary['aic']:.1f}, "
             f"BIC {summary['bic']:.1f}; {len(summary['left_out'])} left out; "
             f"{len(report['promoted'])} promoted; wrote {args.out}")
    emit(args, summary, human)
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    import warnings

    from ..adapters.calibration_io import calibrated_bank, read_long_responses, to_response_data
    from ..domain.bank import ItemBank
    from ..irt.calibration import CalibrationWarning, calibrate

    base = ItemBank.load(args.bank) if args.bank else None
    if base is not None and (args.model in ("GRM", "GPCM") or any(it.model is not None for it in base.items)):
        return _calibrate_bank_with_partial_credit(args, base)
    if args.model in ("GRM", "GPCM"):
        return _calibrate_partial_credit(args)
    students, item_col, response = read_long_responses(args.responses)
    if args.fixed and base is None:
        raise CliError("--fixed needs --bank")
    item_ids = [it.item_id for it in base.items] if base is not None else sorted(set(item_col))
    data = to_response_data(students, item_col, response, item_ids)
    fixed: dict[int, tuple[float, float, float]] = {}
    pretest = np.zeros(len(item_ids), dtype=bool)
    initial = None
    if base is not None:
        from ..irt.calibration import ItemEstimates

        pretest = np.array([it.status == "pretest" for it in base.items])
        if args.fixed == "operational":
            fixed = {j: (it.a, it.difficulty, it.c) for j, it in enumerate(base.items) if it.status != "pretest"}
        else:
            initial = ItemEstimates(np.array([it.a for it in base.items]),
                                    np.array([it.difficulty for it in base.items]),
                                    np.array([it.c for it in base.items]))

    priors = _priors_option(args.priors, args.model)

    def progress(cycle: int, objective: float, change: float) -> None:
        if not args.json or sys.stderr.isatty():
            print(f"[calibrate] cycle {cycle:4d}  log-likelihood + log prior {objective:14.3f}  "
                  f"max change {change:.2e}", file=sys.stderr)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CalibrationWarning)
        s = _em_settings(args)
        result = calibrate(data, args.model, fixed=fixed, method=s.method, n_nodes=s.n_nodes, priors=priors,
                           nodes_kind=s.nodes_kind, start=args.start, initial=initial, latent=args.latent,
                           max_iter=s.max_cycles, tol=s.tol, min_responses=args.min_responses,
                           progress=progress)
    for w in caught:
        print(f"irtcat: warning: {w.message}", file=sys.stderr)
    bank_id = args.bank_id or (base.bank_id if base else "calibrated")
    version = args.version or ((base.version + 1) if base else 1)
    bank, report = calibrated_bank(result, item_ids, base, bank_id, version, pretest,
                                   args.promote_se, args.promote_n, args.promote_rmsd)
    bank.dump(args.out)
    summary = {**result.summary(), "out": str(args.out), "bank_id": bank_id, "version": version,
               "left_out": {item_ids[j]: why for j, why in result.left_out.items()},
               "promoted": report["promoted"], "status_counts": report["status_counts"]}
    _write_report(args, summary, report["items"])
    human = (f"{result.model}: {summary['n_estimated']} items estimated from {summary['n_responses']} responses "
             f"of {summary['n_persons']} persons in {result.iterations} cycles "
             f"({'converged' if result.converged else 'NOT converged'}, {result.seconds:.2f}s); "
             f"-2LL {summary['minus_2ll']:.1f}, AIC {summary['aic']:.1f}, BIC {summary['bic']:.1f}; "
             f"priors {args.priors if args.priors in ('default', 'none') else Path(args.priors).name}; "
             f"SE: {result.se_method}; "
             f"{len(report['promoted'])} promoted; wrote {args.out}")
    emit(args, summary, human)
    return 0


def _em_settings(args: argparse.Namespace) -> Any:
    """The EM settings the options give; the engine's defaults (:class:`EMSettings`) for the others."""
    from ..irt.calibration import EMSettings

    given = {"n_nodes": args.nodes, "nodes_kind": args.quadrature, "tol": args.tol, "max_cycles": args.max_iter,
             "method": args.method}
    return EMSettings(**{k: v for k, v in given.items() if v is not None})


def _priors_option(value: str, model: str) -> Any:
    """``--priors``: default, none, or a JSON file of prior settings (a clear error otherwise)."""
    from ..irt.calibration import Priors, priors_from

    if value in ("default", "none"):
        return priors_from(value, model)  # type: ignore[arg-type]
    try:
        doc = json.loads(Path(value).read_text())
    except OSError as exc:
        raise CliError(f"--priors: cannot read {value}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise CliError(f"--priors: {value} is not JSON ({exc.msg}, line {exc.lineno})") from exc
    if not isinstance(doc, dict):
        raise CliError(f"--priors: {value} must hold a JSON object such as "
                       '{"log_a": [0, 0.5], "b": [0, 3], "c": [3, 12], "float_log_a": true}')
    try:
        return Priors.from_dict(doc)
    except ValueError as exc:
        raise CliError(f"--priors: {value}: {exc}") from exc


def _report(args: argparse.Namespace) -> int:
    if args.health:
        from .health import health_report

        return health_report(args)
    from ..analytics.report import build_report

    summary = build_report(args.history, args.out)
    emit(args, summary, f"answered {len(summary['queries'])} questions over {summary['history_records']} "
          f"history records in {summary['seconds']:.1f}s; dashboard: {summary['dashboard']}")
    return 0


def _dlq(args: argparse.Namespace) -> int:
    from ..adapters.replay import list_dlq, list_quarantine, replay

    out = stack_outputs(args, ("HistoryBucketName", "PipeDeadLetterQueueUrl", "AnswerStreamName"))
    parked = []
    if args.source in ("all", "quarantine"):
        parked += list_quarantine(out["HistoryBucketName"])
    if args.source in ("all", "dlq"):
        parked += list_dlq(out["PipeDeadLetterQueueUrl"])
    if args.dlq_command == "list":
        rows = [p.summary() for p in parked]
        emit(args, {"parked": rows, "count": len(rows)},
              "\n".join(f"{r['source']:10s} {r['records']:3d} record(s)  {r['reason'][:70]:70s}  {r['id']}"
                        for r in rows) or "nothing parked")
        return 0
    if args.id:
        parked = [p for p in parked if p.id == args.id]
        if not parked:
            raise CliError(f"nothing parked with id {args.id}")
    report = replay(parked, out["AnswerStreamName"], out["HistoryBucketName"], out["PipeDeadLetterQueueUrl"])
    failed = "".join(f"\n  not replayed {key}: {why}" for key, why in report.failed.items())
    emit(args, {"replayed": report.sent, "items": len(report.replayed), "failed": report.failed},
          f"replayed {report.sent} record(s) from {len(report.replayed)} parked item(s){failed}")
    return 0


def _capacity(args: argparse.Namespace) -> int:
    from ..capacity.model import Knobs, PriceTable, Profile, plan

    table = PriceTable.load(args.prices)
    if args.region != table.region:
        raise CliError(f"the price table is for {table.region}; for {args.region} pass --prices FILE "
                       "(same shape as irtcat/capacity/aws_prices.json)")
    profile = Profile.load(args.profile)
    knobs = Knobs(batch_size=args.batch_size, utilisation=args.utilisation, function_memory_mb=args.memory_mb)
    rows = [plan(n, args.seconds_per_item, profile, table, knobs) for n in args.students]
    unchecked = sorted(k for k, v in table.prices.items() if v.checked != "aws_page")
    out = {"rows": rows, "region": table.region, "prices_read": table.read, "profile": profile.provenance,
           "assumed": profile.assumed, "prices_not_checked_on_an_aws_page": unchecked}
    header = (f"{'students':>9} {'ans/s':>8} {'shards':>6} {'lanes':>5} {'par':>3} {'exec/s':>8} {'λ conc':>7} "
              f"{'RRU/s':>9} {'WRU/s':>9} {'FH rec/s':>9} {'$/1k ans':>9} {'$/test':>8}")
    lines = [header] + [
        f"{r['students']:>9,} {r['answers_per_second']:>8,.0f} {r['StreamShardCount']:>6} {r['lanes']:>5} "
        f"{r['PipeParallelization']:>3} {r['express_executions_per_second']:>8,.0f} "
        f"{r['lambda_concurrency_total']:>7,.0f} {r['dynamodb_read_units_per_second']:>9,.0f} "
        f"{r['dynamodb_write_units_per_second']:>9,.0f} {r['firehose_records_per_second']:>9,.0f} "
        f"{r['usd_per_1000_answers']:>9.4f} {r['usd_per_student_test']:>8.5f}" for r in rows]
    lines += [f"  ! {w}" for r in rows for w in r["warnings"]]
    lines.append(f"{table.region}, prices read {table.read}; profile {profile.provenance.get('command', '?')} "
                 f"at {profile.provenance.get('commit', '?')} ({profile.provenance.get('date', '?')})")
    if unchecked:
        lines.append("prices not confirmed on an AWS page (check them, or pass --prices): " + ", ".join(unchecked))
    emit(args, out, "\n".join(lines))
    return 0


def _local(args: argparse.Namespace) -> int:
    from . import local as commands

    handler: Handler = getattr(commands, args.local_command.replace("-", "_"))
    return handler(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the docs and the tests)."""
    from ..domain.promotion import GATES

    p = argparse.ArgumentParser(prog="irtcat", description="IRT computerized adaptive testing engine")
    sub = p.add_subparsers(dest="command", required=True)

    bank = sub.add_parser("bank", help="item banks").add_subparsers(dest="bank_command", required=True)
    g = bank.add_parser("generate", help="generate an item bank JSON")
    g.add_argument("--items", type=int, default=500)
    g.add_argument("--model", choices=["1PL", "2PL", "3PL", "4PL"], default="3PL")
    g.add_argument("--models", help="cycle the items through models, e.g. 3PL,GRM,GPCM (partial-credit items "
                                    "have 4 categories and no content: for simulation)")
    g.add_argument("--pretest", type=int, default=0, help="pretest items added to the operational ones")
    g.add_argument("--content-areas", default="", help="comma-separated areas, assigned in turn")
    g.add_argument("--bank-id", default="demo")
    g.add_argument("--version", type=int, default=1)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--no-content", action="store_true", help="no stems/options (smaller file)")
    g.add_argument("--no-exposure-control", action="store_true",
                   help="no exposure control (skip the allocation prices and the Sympson-Hetter simulation)")
    g.add_argument("--normal-metric", action="store_true", help="D = 1.702 instead of 1")
    g.add_argument("--out", type=Path, required=True)
    g.add_argument("--json", action="store_true")
    g.set_defaults(fn=_bank_generate)

    pb = bank.add_parser("publish", help="upload a bank version (and a test using it) to the bank bucket")
    pb.add_argument("--bank", type=Path, required=True)
    pb.add_argument("--bucket", required=True, help="the stack's BankBucketName output")
    pb.add_argument("--test-id", help="also write this test definition, drawing on the bank")
    pb.add_argument("--policy", type=Path, help="TestPolicy JSON for --test-id (defaults otherwise)")
    pb.add_argument("--no-current", action="store_true", help="upload without moving the current pointer")
    pb.add_argument("--json", action="store_true")
    pb.set_defaults(fn=_bank_publish)
    add_item_commands(bank)

    resp = sub.add_parser("responses", help="response data").add_subparsers(dest="resp_command", required=True)
    r = resp.add_parser("generate", help="simulate long-format responses for a bank")
    r.add_argument("--bank", type=Path, required=True)
    r.add_argument("--examinees", type=int, default=1000)
    r.add_argument("--thetas", type=Path, help="true abilities, one per line")
    r.add_argument("--items-per-person", type=int, help="random subset per person (default all)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--thetas-out", type=Path, help="also write the true abilities here")
    r.add_argument("--json", action="store_true")
    r.set_defaults(fn=_responses_generate)

    s = sub.add_parser("simulate", help="run simulated examinees through a CAT policy")
    s.add_argument("--bank", type=Path, required=True)
    s.add_argument("--examinees", type=int, default=1000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--thetas", type=Path, help="true abilities, one per line (instead of --examinees)")
    s.add_argument("--policy", type=Path, help="TestPolicy JSON (default policy when absent)")
    s.add_argument("--plots", type=Path, help="write PNG plots into this folder")
    s.add_argument("--administered", type=Path,
                   help="write every simulee's items in order here (NDJSON: examinee, theta, items)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=_simulate)

    add_blueprint_commands(sub)
    add_health_commands(sub)
    add_student_commands(sub)

    e = sub.add_parser("exposure",
                       help="exposure control for a policy: allocation prices and Sympson-Hetter parameters")
    e.add_argument("--bank", type=Path, required=True)
    e.add_argument("--policy", type=Path)
    e.add_argument("--target", type=float, help="maximum exposure rate (default: the policy's max_exposure, 0.25)")
    e.add_argument("--examinees", type=int, default=3000)
    e.add_argument("--iterations", type=int, default=12)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", type=Path, required=True, help="the bank with exposure_k filled in")
    e.add_argument("--json", action="store_true")
    e.set_defaults(fn=_exposure)

    c = sub.add_parser("calibrate", help="estimate item parameters (Bock-Aitkin EM) from responses")
    c.add_argument("--responses", type=Path, required=True,
                   help="CSV or Parquet: student_id,item_id,response (0/1; categories 0..m for GRM and GPCM)")
    c.add_argument("--model", choices=["1PL", "2PL", "3PL", "GRM", "GPCM"], default="2PL")
    c.add_argument("--bank", type=Path, help="existing bank: ids, starting values, fixed items")
    c.add_argument("--fixed", choices=["operational"], help="hold the bank's non-pretest items fixed")
    c.add_argument("--method", choices=["mem", "oem"], default="mem", help="online calibration method")
    c.add_argument("--nodes", type=int, help="quadrature nodes (default 41)")
    c.add_argument("--quadrature", choices=["equal", "hermite"], help="node spacing (default equal)")
    c.add_argument("--start", choices=["pairwise", "pvalue", "flat"], default="pairwise")
    c.add_argument("--latent", choices=["fixed", "normal", "histogram"], default="fixed")
    c.add_argument("--max-iter", type=int, help="EM cycles, counted in E-steps (default 500)")
    c.add_argument("--tol", type=float, help="largest parameter change at convergence (default 1e-4)")
    c.add_argument("--min-responses", type=int, default=30)
    c.add_argument("--priors", default="default", metavar="default|none|FILE",
                   help="default (chosen by a calibration study, see docs/calibration.md), none (plain "
                        'MML), or a JSON file: {"log_a": [mu, sigma], "b": [mu, sigma], "c": [alpha, beta], '
                        '"float_log_a": true}, a null or missing key switching that prior off')
    c.add_argument("--promote-se", type=float, default=GATES.max_se_b, help="max SE(b) to promote a pretest item")
    c.add_argument("--promote-n", type=int, default=GATES.min_responses, help="min responses to promote a pretest item")
    c.add_argument("--promote-rmsd", type=float, default=GATES.max_rmsd, help="max RMSD to promote a pretest item")
    c.add_argument("--bank-id")
    c.add_argument("--version", type=int)
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--report", type=Path, help="also write the per-item report (JSON)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(fn=_calibrate)

    dq = sub.add_parser("dlq", help="list or replay rejected events and dead-lettered batches")
    dqs = dq.add_subparsers(dest="dlq_command", required=True)
    for name, helptext in (("list", "show what is parked and why"),
                           ("replay", "put parked records back on the stream, then remove them")):
        d = dqs.add_parser(name, help=helptext)
        d.add_argument("--source", choices=["all", "quarantine", "dlq"], default="all")
        d.add_argument("--stack", help="a deployed stack's name (default: the local stack)")
        d.add_argument("--data-dir", type=Path, default=DATA_DIR)
        d.add_argument("--bucket", help="history bucket (quarantine/)")
        d.add_argument("--queue-url", help="the Pipe's dead-letter queue")
        d.add_argument("--stream", help="the answer stream")
        d.add_argument("--json", action="store_true")
        if name == "replay":
            d.add_argument("--id", help="replay only this one (an S3 key from 'list')")
        d.set_defaults(fn=_dlq)

    cp = sub.add_parser("capacity", help="shards, lanes, concurrency, throughput and cost for a load of students")
    cp.add_argument("--students", type=int, nargs="+", default=[1_000, 10_000, 100_000],
                    help="students answering at once (one row each)")
    cp.add_argument("--seconds-per-item", type=float, default=30.0, help="mean seconds a student takes per item")
    cp.add_argument("--region", default="us-east-1", help="the Region of the price table")
    cp.add_argument("--prices", type=Path, help="a price and quota table (default: the shipped us-east-1 one)")
    cp.add_argument("--profile", type=Path, help="a per-answer profile (default: the shipped one)")
    cp.add_argument("--batch-size", type=int, default=10, help="PipeBatchSize")
    cp.add_argument("--utilisation", type=float, default=0.5, help="share of a Pipe lane's capacity to plan for")
    cp.add_argument("--memory-mb", type=int, default=512, help="FunctionMemorySize (the per-answer functions)")
    cp.add_argument("--json", action="store_true")
    cp.set_defaults(fn=_capacity)

    rp = sub.add_parser("report", help="the named questions on exported history, and an HTML dashboard")
    rp.add_argument("--history", type=Path, required=True, help="folder with history/dt=YYYY-MM-DD/ files")
    rp.add_argument("--out", type=Path, default=Path("report"))
    rp.add_argument("--health", action="store_true", help="the bank's health page instead (docs/health.md)")
    rp.add_argument("--bank", type=Path, help="with --health: the bank the history was answered on")
    rp.add_argument("--json", action="store_true")
    rp.set_defaults(fn=_report)

    try:
        from .local import add_local_parser
    except ImportError:  # the local runtime's extras are not installed
        pass
    else:
        add_local_parser(sub, _local)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except (CliError, ValueError) as exc:
        print(f"irtcat: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
