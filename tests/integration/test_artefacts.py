"""The deployable artefacts, built as ``sam build`` builds them (the layers by shared/Makefile,
from Lambda-platform wheels, so no Docker and no Python 3.12 are needed): every function with
its layers stays under 80% of Lambda's unzipped limit, no package comes twice, nothing the
runtime provides is bundled (that the locks are current is tests/unit/test_locks.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from irtcat.emulator.template import expand_sam, load_template, parameter_defaults

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
# Lambda quotas: a function's deployment package and its layers, unzipped, at most 250 MiB
UNZIPPED_LIMIT = 250 * 1024 * 1024
BUDGET = 0.8 * UNZIPPED_LIMIT
# the Python runtimes ship boto3 and what it depends on; bundling them again is dead weight
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
LAYERS = ("SharedLayer", "ScipyLayer")


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _norm(name: str) -> str:
    return name.lower().replace("_", "-")


def _projects(python_dir: Path) -> set[str]:
    """The distributions in a layer's python/ folder, by their dist-info."""
    return {_norm(d.name.split("-")[0]) for d in python_dir.glob("*.dist-info")}


def _top_level(python_dir: Path) -> set[str]:
    """The importable top-level names a layer (or a function's code) puts on sys.path."""
    names = set()
    for entry in python_dir.iterdir():
        if entry.name.endswith((".dist-info", ".libs")) or entry.name.startswith(("_", ".")):
            continue
        names.add(entry.name.split(".")[0] if entry.is_file() else entry.name)
    return names


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each layer's python/ folder, built by the Makefile target ``sam build`` runs."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed (sam build needs it for BuildMethod: makefile)")
    out = {}
    for layer in LAYERS:
        work = tmp_path_factory.mktemp(layer)
        source = work / "source"
        shutil.copytree(ROOT / "shared", source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        artefacts = work / "artefacts"
        artefacts.mkdir()
        run = subprocess.run(["make", "-C", str(source), f"build-{layer}", f"ARTIFACTS_DIR={artefacts}",
                              f"PYTHON={sys.executable}"], capture_output=True, text=True, timeout=1200)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        out[layer] = artefacts / "python"
    return out


@pytest.fixture(scope="module")
def functions() -> dict[str, dict[str, Any]]:
    sam = load_template(ROOT / "template.yaml")
    cfn = expand_sam(sam, {k: str(v) for k, v in parameter_defaults(sam).items()})
    out = {}
    for logical_id, res in sam["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        layers = [ref["Ref"] for ref in cfn["Resources"][logical_id]["Properties"].get("Layers", [])]
        # the translator suffixes a layer's logical id with a hash of its content
        out[logical_id] = {"code": ROOT / res["Properties"]["CodeUri"],
                           "layers": [next(name for name in LAYERS if ref.startswith(name)) for ref in layers]}
    return out


def test_every_function_with_its_layers_fits_with_headroom(built: dict[str, Path],
                                                           functions: dict[str, dict[str, Any]]) -> None:
    sizes = {layer: _size(path) for layer, path in built.items()}
    report = {}
    for logical_id, fn in functions.items():
        total = _size(fn["code"]) + sum(sizes[layer] for layer in fn["layers"])
        report[logical_id] = round(total / 2**20, 1)
        assert total <= BUDGET, f"{logical_id}: {total / 2**20:.1f} MiB of {BUDGET / 2**20:.0f} MiB"
    print(json.dumps({"layers_mib": {k: round(v / 2**20, 1) for k, v in sizes.items()}, "functions_mib": report}))


def test_no_package_twice_and_nothing_the_runtime_provides(built: dict[str, Path],
                                                           functions: dict[str, dict[str, Any]]) -> None:
    for layer, path in built.items():
        assert not _projects(path) & RUNTIME_PROVIDED, f"{layer} bundles {_projects(path) & RUNTIME_PROVIDED}"
        assert not any(path.rglob("tests")), f"{layer} still carries test suites"
    for logical_id, fn in functions.items():
        seen: dict[str, str] = {}
        code = {p.stem for p in fn["code"].iterdir() if p.suffix == ".py" or p.is_dir()}
        for owner, names in [("code", code), *[(layer, _top_level(built[layer])) for layer in fn["layers"]]]:
            for name in names:
                assert name not in seen, f"{logical_id}: {name} in both {seen[name]} and {owner}"
                seen[name] = owner
        # the functions bring no requirements of their own: their packages come from the layers
        assert not (fn["code"] / "requirements.txt").exists(), logical_id


def _python_312() -> str | None:
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(pyenv.glob("3.12*/bin/python3.12"))
    if candidates:
        return str(candidates[-1])
    found = shutil.which("python3.12")  # not a pyenv shim: it answers only where 3.12 is selected
    return found if found and "shims" not in found else None


def test_the_calibration_functions_import_and_compute_on_python_312(built: dict[str, Path], tmp_path: Path) -> None:
    """The pruned layers work together on the runtime's Python, with only what the runtime adds
    (boto3 and its dependencies, installed here as it ships them): every calibration handler
    imports, and numpy under scipy is the shared layer's."""
    python = _python_312()
    if python is None:
        pytest.skip("no Python 3.12 on this machine (pyenv install 3.12 runs this check)")
    runtime = tmp_path / "runtime"  # the stand-in for what Lambda's python3.12 runtime provides
    run = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                          "--only-binary=:all:", "--implementation", "cp", "--python-version", "3.12",
                          "--platform", "manylinux2014_x86_64", "--target", str(runtime), "boto3"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert _projects(runtime) <= RUNTIME_PROVIDED, _projects(runtime) - RUNTIME_PROVIDED
    steps = sorted(p.name for p in (ROOT / "functions").glob("calibration_*"))
    code = ("import importlib.util, sys, numpy, scipy.sparse, scipy.special\n"
            f"for step in {steps!r}:\n"
            f"    spec = importlib.util.spec_from_file_location(step, '{ROOT}/functions/' + step + '/app.py')\n"
            "    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
            "    assert callable(module.handler)\n"
            "m = scipy.sparse.csr_matrix(numpy.eye(3)); print(m.sum(), scipy.special.expit(0.0), numpy.__file__)")
    env = {"PYTHONPATH": os.pathsep.join([*(str(built[layer]) for layer in LAYERS), str(runtime)]),
           "PATH": os.environ["PATH"], "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"}
    run = subprocess.run([python, "-s", "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    total, half, numpy_path = run.stdout.split()
    assert float(total) == 3.0 and float(half) == 0.5 and str(built["SharedLayer"]) in numpy_path
