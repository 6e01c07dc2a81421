"""``irtcat bank import``: bring a testing organisation's items in (docs/items.md; the readers
are in :mod:`irtcat.importer`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import CliError, emit


def _bank_import(args: argparse.Namespace) -> int:
    from ..importer.build import import_bank, media_dir
    from ..importer.safety import Refused

    try:
        bank, report = import_bank(list(args.paths), args.out, bank_id=args.bank_id, parameters=args.parameters,
                                   content_area_from=args.content_area_from)
    except Refused as exc:
        raise CliError(str(exc)) from None
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


def add_item_commands(bank: Any) -> None:
    """Register ``bank import`` under the ``bank`` subcommands."""
    im = bank.add_parser("import", help="import items: QTI 2.1/2.2/3.0 packages, folders or files, CSV/XLSX sheets")
    im.add_argument("paths", type=Path, nargs="+", metavar="PATH")
    im.add_argument("--out", type=Path, required=True, help="the bank JSON to write (media go to BANK.media/)")
    im.add_argument("--bank-id", help="default: the output file's name")
    im.add_argument("--parameters", type=Path, help="CSV item_id,model,a,b,c[,d,b1..b5]: items without are pretest")
    im.add_argument("--content-area-from", metavar="FIELD",
                    help="a metadata key (e.g. lom.classification.taxonpath.taxon.entry) or 'title' as content_area")
    im.add_argument("--strict", action="store_true", help="exit 2 when any item is refused")
    im.add_argument("--json", action="store_true")
    im.set_defaults(fn=_bank_import)
