"""irtcat benchmarks: ``./dev bench [--only NAME ...] [--area AREA ...]``.

The benchmarks live by area (``engine.py``, ``lambdas.py``, ``pipeline.py``, ``calibration.py``,
``exposure.py``, ``blueprint.py``, ``health.py``); each module's ``BENCHES`` names them. A run
prints a table and records each
benchmark's values in ``benchmarks/results.json`` with its date, commit, machine and command;
``python benchmarks/report.py`` then writes docs/benchmarks.md and the README's figures from
those records (never by hand).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import blueprint
import calibration
import engine
import exposure
import health
import lambdas
import pipeline
from harness import ROOT, provenance

Bench = Callable[[argparse.Namespace], dict[str, Any]]
AREAS: dict[str, dict[str, Bench]] = {"engine": engine.BENCHES, "lambdas": lambdas.BENCHES,
                                      "pipeline": pipeline.BENCHES, "calibration": calibration.BENCHES,
                                      "exposure": exposure.BENCHES, "blueprint": blueprint.BENCHES,
                                      "health": health.BENCHES}
BENCHES: dict[str, Bench] = {name: fn for benches in AREAS.values() for name, fn in benches.items()}
RESULTS = ROOT / "benchmarks" / "results.json"
DEFAULTS = {"students": 30, "soak_sessions": 200}


def area_of(name: str) -> str:
    return next(area for area, benches in AREAS.items() if name in benches)


def command(name: str, args: argparse.Namespace) -> str:
    """The command that reproduces one benchmark's result (options that differ from the defaults)."""
    extra = "".join(f" --{key.replace('_', '-')} {getattr(args, key)}" for key, default in DEFAULTS.items()
                    if getattr(args, key) != default)
    return f"./dev bench --only {name}{extra}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(BENCHES), action="append", help="a benchmark (repeatable)")
    parser.add_argument("--area", choices=sorted(AREAS), action="append", help="every benchmark of an area")
    parser.add_argument("--students", type=int, default=DEFAULTS["students"],
                        help="simulated tablets in the pipeline benchmarks")
    parser.add_argument("--soak-sessions", type=int, default=DEFAULTS["soak_sessions"],
                        help="concurrent tablets in the soak")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    names = list(args.only or [])
    names += [n for area in args.area or [] for n in AREAS[area] if n not in names]
    records = json.loads(args.out.read_text()) if args.out.exists() else {}
    for name in names or list(BENCHES):
        print(f"[bench] {name}...", file=sys.stderr, flush=True)
        values = BENCHES[name](args)
        width = max((len(k) for k in values), default=0)
        for key, value in values.items():
            shown = f"{value:.3f}" if isinstance(value, float) else str(value)
            print(f"{key:{width}s}  {shown}")
        records[name] = {**provenance(command(name, args)), "area": area_of(name), "values": values}
        args.out.write_text(json.dumps(records, indent=1, sort_keys=True, default=str) + "\n")  # after each
    return 0


if __name__ == "__main__":
    sys.exit(main())
