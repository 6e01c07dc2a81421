"""``irtcat bank import``: bring a testing organisation's items in (docs/items.md; the readers
are in :mod:`irtcat.importer`); ``irtcat students import``: their students' accommodations and
group variables."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import DATA_DIR, CliError, emit, stack_outputs


def ensure_exposure_control(bank: Any, policy: Any, path: Path) -> Any:
    """``bank`` with exposure control for ``policy``: as it is when it carries it, else computed
    now and written back to ``path`` (saying so on stderr), since no bank goes live uncontrolled."""
    import sys
    import time

    from ..domain.exposure import with_exposure_control

    problem = policy.exposure_problem(bank)
    if problem is None:
        return bank
    print(f"irtcat: {problem.split(':')[0]}: computing it for this policy now (minutes for a shadow test)...",
          file=sys.stderr)
    started = time.perf_counter()
    controlled, _ = with_exposure_control(bank, policy)
    controlled.dump(path)
    print(f"irtcat: exposure control computed in {time.perf_counter() - started:.0f} s and written to {path}",
          file=sys.stderr)
    return controlled


def _bank_import(args: argparse.Namespace) -> int:
    from ..importer.build import import_bank, media_dir
    from ..importer.safety import Refused

    try:
        bank, report = import_bank(list(args.paths), args.out, bank_id=args.bank_id, parameters=args.parameters,
                                   content_area_from=args.content_area_from)
    except Refused as exc:
        raise CliError(str(exc)) from None
    if bank is not None and args.policy is not None and bank.engine.operational.any():
        from ..adapters.files import load_policy

        bank = ensure_exposure_control(bank, load_policy(args.policy), args.out)
    summary = {"imported": report.imported, "refused": report.refused,
               "bank": str(args.out) if bank is not None else None,
               "media": str(media_dir(args.out)) if bank is not None and media_dir(args.out).exists() else None}
    lines = [f"imported {len(report.imported)} item(s) into {args.out}" if bank is not None
             else "no item imported: no bank written"]
    lines += [f"refused {r['item_id'] or '-'} ({r['source']}): {r['reason']}" for r in report.refused]
    emit(args, summary, "\n".join(lines))
    if bank is None or (args.strict and report.refused):
        return 2
    return 0


def _bank_export(args: argparse.Namespace) -> int:
    from ..domain.bank import ItemBank
    from ..importer.build import media_dir
    from ..importer.export import export_bank

    bank = ItemBank.load(args.bank)
    summary = export_bank(bank, media_dir(args.bank), args.qti)
    emit(args, summary, f"wrote {summary['items']} item(s), {summary['stimuli']} stimulus(es) and "
                        f"{summary['media_files']} media file(s) to {args.qti} (QTI 3.0)")
    return 0


def add_item_commands(bank: Any) -> None:
    """Register ``bank import`` and ``bank export`` under the ``bank`` subcommands."""
    ex = bank.add_parser("export", help="write a bank as a QTI 3.0 package (importing it gives the bank back)")
    ex.add_argument("bank", type=Path, metavar="BANK.json")
    ex.add_argument("--qti", type=Path, required=True, metavar="OUT.zip")
    ex.add_argument("--json", action="store_true")
    ex.set_defaults(fn=_bank_export)
    im = bank.add_parser("import", help="import items: QTI 2.1/2.2/3.0 packages, folders or files, CSV/XLSX sheets")
    im.add_argument("paths", type=Path, nargs="+", metavar="PATH")
    im.add_argument("--out", type=Path, required=True, help="the bank JSON to write (media go to BANK.media/)")
    im.add_argument("--bank-id", help="default: the output file's name")
    im.add_argument("--parameters", type=Path, help="CSV item_id,model,a,b,c[,d,b1..b5]: items without are pretest")
    im.add_argument("--policy", type=Path, help="the test's policy: exposure control is computed for it")
    im.add_argument("--content-area-from", metavar="FIELD",
                    help="a metadata key (e.g. lom.classification.taxonpath.taxon.entry) or 'title' as content_area")
    im.add_argument("--strict", action="store_true", help="exit 2 when any item is refused")
    im.add_argument("--json", action="store_true")
    im.set_defaults(fn=_bank_import)


def _students_import(args: argparse.Namespace) -> int:
    import csv

    from ..adapters.aws import DynamoStudents, Settings
    from ..domain.student import settings_row

    try:
        rows = list(csv.DictReader(args.file.read_text(encoding="utf-8-sig").splitlines()))
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    parsed, refused = [], []
    for n, row in enumerate(rows, start=2):
        try:
            parsed.append(settings_row(row, f"{args.file.name}:{n}"))
        except ValueError as exc:
            refused.append({"row": n, "reason": str(exc)})
    table = stack_outputs(args, ("StateTableName",))["StateTableName"]
    students = DynamoStudents(Settings(table_name=table, bank_bucket="-", history_stream="-", history_bucket="-"))
    grouped: set[str] = set()
    for student_id, test_id, accommodations, groups in parsed:
        students.set_accommodations(student_id, test_id, accommodations)
        if student_id not in grouped:  # a student's groups are the first row's (they hold for every test)
            students.set_groups(student_id, groups)
            grouped.add(student_id)
    summary = {"updated": len(parsed), "students": len({p[0] for p in parsed}), "refused": refused}
    emit(args, summary, f"updated {len(parsed)} row(s) for {summary['students']} student(s)"
         + "".join(f"\nrefused row {r['row']}: {r['reason']}" for r in refused))
    return 2 if refused and args.strict else 0


def add_student_commands(sub: Any) -> None:
    """Register ``students import``."""
    students = sub.add_parser("students", help="student accommodations and group variables").add_subparsers(
        dest="students_command", required=True)
    si = students.add_parser("import", help="set accommodations and group variables from a CSV "
                                            "(student_id[,test_id],accommodation.*,group.*)")
    si.add_argument("file", type=Path)
    si.add_argument("--stack", help="a deployed stack's name (default: the stack of irtcat local up)")
    si.add_argument("--data-dir", type=Path, default=DATA_DIR)
    si.add_argument("--strict", action="store_true", help="exit 2 when any row is refused")
    si.add_argument("--json", action="store_true")
    si.set_defaults(fn=_students_import)
