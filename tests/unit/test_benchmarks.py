"""benchmarks/ by area, and the docs generated from their results: docs/benchmarks.md and the
README's figures are what benchmarks/report.py makes of benchmarks/results.json."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "benchmarks" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_benchmark_has_one_area_and_no_module_is_long() -> None:
    report = _report()
    benches = report.registered()
    assert len(benches) >= 25 and set(a for a, _ in benches.values()) == set(report.AREA_TITLES)
    for path in (ROOT / "benchmarks").glob("*.py"):
        assert len(path.read_text().splitlines()) <= 500, path.name
    for name, (_, description) in benches.items():
        assert description, f"{name}: its function has no docstring to say what it measures"


def test_the_docs_are_generated_from_the_results() -> None:
    report = _report()
    records = json.loads((ROOT / "benchmarks" / "results.json").read_text())
    for name, record in records.items():
        assert {"date", "commit", "machine", "command", "area", "values"} <= set(record), name
        assert record["command"].startswith(f"./dev bench --only {name}"), name
    assert (ROOT / "docs" / "benchmarks.md").read_text() == report.render_doc(records), \
        "docs/benchmarks.md is stale: python benchmarks/report.py"
    readme = (ROOT / "README.md").read_text()
    assert report.with_figures(readme, report.render_figures(records)) == readme, \
        "the README's figures are stale: python benchmarks/report.py"


def test_a_figure_carries_its_run_and_a_missing_result_is_said() -> None:
    report = _report()
    name = next(iter(report.registered()))
    record = {"date": "2030-01-02", "commit": "abc1234", "machine": "m", "command": f"./dev bench --only {name}",
              "area": "x", "values": {"v": 1.23456}}
    doc = report.render_doc({name: record})
    assert f"`./dev bench --only {name}` · 2030-01-02 · commit abc1234 · m" in doc and "| v | 1.235 |" in doc
    assert "No result recorded yet" in report.render_doc({})


def test_the_3pl_default_priors_are_the_ones_the_study_chose() -> None:
    """The shipped default is the candidate ``benchmarks/priors_study.py`` chose in its last
    recorded run, and that run's final check passed."""
    import sys

    from irtcat.irt.calibration import Priors

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from priors_study import CANDIDATES
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    values = json.loads((ROOT / "benchmarks" / "results.json").read_text())["priors_study"]["values"]
    chosen = values["priors_study_chosen"]
    assert values["priors_study_held_out_check"] == "passed"
    priors, nodes = CANDIDATES[chosen]
    assert priors == Priors.default("3PL") and nodes == 41
