"""The locks (locks/deps.py): every environment the README's commands create equals its lock, every
lock is current and hashed, and `deps upgrade` writes only locks that passed the suite, naming the
package and the first release that broke which tests (against a local package folder holding a
good and a bad release of a small fake package)."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_every_lock_is_current(deps: Any) -> None:
    config = deps.load_config(ROOT)
    assert deps.stale(config) == [], "run ./dev deps compile"


def test_every_pin_carries_hashes(deps: Any) -> None:
    config = deps.load_config(ROOT)
    for lock in config.locks.values():
        text = (ROOT / lock.path).read_text()
        blocks = [b for b in text.split("\n") if b and not b.startswith(("#", " "))]
        assert blocks, lock.path
        for block in text.split("\n"):
            if block and not block.startswith(("#", " ")):
                assert block.endswith("\\"), f"{lock.path}: {block} has no --hash lines"


def test_this_environment_is_the_lock(deps: Any) -> None:
    """The suite runs in the .venv ./dev built: package for package what the locks say."""
    assert deps.differences([ROOT / "locks" / "bootstrap.txt", ROOT / "locks" / "dev.txt"], ["irtcat"]) == []


def test_a_difference_is_named(deps: Any, tmp_path: Path) -> None:
    lock = tmp_path / "lock.txt"
    lock.write_text("pytest==0.0.1 \\\n    --hash=sha256:00\nnot-installed-anywhere==1.0 ; python_version >= '3'\n"
                    "never-here==1.0 ; python_version < '3'\n")
    diff = deps.differences([lock])
    assert any(d.startswith("pytest ") and "0.0.1 locked" in d for d in diff)
    assert "missing not-installed-anywhere==1.0" in diff
    assert not any("never-here" in d for d in diff)  # its marker excludes this interpreter
    assert any(d.endswith("not in the lock") for d in diff)


def test_the_layer_lock_holds_the_requirements_and_not_the_runtime(deps: Any) -> None:
    locked = {pin.name for pin in deps.read_lock(ROOT / "shared" / "layer.lock")}
    wanted = {deps.norm(line.split(">")[0].split("[")[0].split("=")[0].split("<")[0].strip())
              for line in (ROOT / "shared" / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    assert wanted <= locked
    config = deps.load_config(ROOT)
    assert not locked & set(config.locks["layer"].exclude)
    assert {p.name for p in deps.read_lock(ROOT / "shared" / "scipy.lock")} == {"scipy"}


def test_tested_ranges_are_lifted_and_rewritten(deps: Any) -> None:
    text = '  "moto[server]>=5.2.5,<=5.2.5",\n  "botocore>=1.44.13,<=1.44.18",\n  "numpy>=2.0",\n'
    lifted = deps.lift_ranges(text)
    assert '"moto[server]>=5.2.5"' in lifted and '"botocore>=1.44.13"' in lifted and '"numpy>=2.0"' in lifted
    written = deps.write_ranges(text, {"moto": "5.2.6", "botocore": "1.44.30"}, {"moto"})
    assert '"moto[server]>=5.2.6,<=5.2.6"' in written and '"botocore>=1.44.13,<=1.44.30"' in written


def test_the_dev_lock_covers_every_supported_python(deps: Any) -> None:
    """One universal lock: numpy (and what forks with it) has a pin for 3.11, 3.12 and 3.13 alike."""
    pins = [p for p in deps.read_lock(ROOT / "locks" / "dev.txt") if p.name == "numpy"]
    assert pins
    for version in ("3.11", "3.12", "3.13"):
        env = {"python_full_version": f"{version}.0", "python_version": version}
        from pip._vendor.packaging.markers import Marker

        assert sum(1 for p in pins if not p.marker or Marker(p.marker).evaluate(env)) == 1, version


# ---------------------------------------------------------------------------- deps upgrade


def _wheel(folder: Path, name: str, version: str, body: str) -> None:
    """A minimal pure-Python wheel."""
    dist = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": body,
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: irtcat-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as whl:
        for path, text in files.items():
            data = text.encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{path},sha256={digest},{len(data)}")
            whl.writestr(path, data)
        whl.writestr(f"{dist}/RECORD", "\n".join([*record, f"{dist}/RECORD,,"]) + "\n")


SUITE = '''import os, subprocess, sys
subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--require-hashes",
                "--target", "_deps", "-r", "locks/app.txt"], check=True)
env = dict(os.environ, PYTHONPATH="_deps")
sys.exit(subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], env=env).returncode)
'''
TESTS = '''import fakepkg, helperpkg

def test_fakepkg_answers_one():
    assert fakepkg.VALUE == 1

def test_helperpkg_imports():
    assert helperpkg.VALUE >= 1
'''


@pytest.fixture()
def fake_project(tmp_path: Path, deps: Any) -> tuple[Path, Path]:
    """A project locked at fakepkg 1.0 and helperpkg 1.0; its package folder then gains fakepkg 1.1
    (good), 1.2 and 1.3 (bad: VALUE is 2) and helperpkg 1.1 (good)."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "fakepkg", "1.0", "VALUE = 1\n")
    _wheel(wheels, "helperpkg", "1.0", "VALUE = 1\n")
    project = tmp_path / "project"
    (project / "locks").mkdir(parents=True)
    (project / "tests").mkdir()
    (project / "requirements.in").write_text("fakepkg\nhelperpkg\n")
    (project / "run_suite.py").write_text(SUITE)
    (project / "tests" / "test_app.py").write_text(TESTS)
    (project / "ranges.toml").write_text('tested = ["helperpkg>=1.0,<=1.0"]\n')
    (project / "locks" / "locks.toml").write_text(
        f'[project]\npython = "3.11"\ntest = {json.dumps([sys.executable, "run_suite.py"])}\n'
        'tested_ranges = "ranges.toml"\n\n'
        '[locks.app]\nlock = "locks/app.txt"\ninputs = ["requirements.in"]\ntarget = "universal"\n')
    config = deps.load_config(project)
    deps.compile_all(config, index=["--find-links", str(wheels), "--no-index"])
    assert {(p.name, p.version) for p in deps.read_lock(project / "locks" / "app.txt")} == {
        ("fakepkg", "1.0"), ("helperpkg", "1.0")}
    _wheel(wheels, "fakepkg", "1.1", "VALUE = 1\n")
    _wheel(wheels, "fakepkg", "1.2", "VALUE = 2\n")
    _wheel(wheels, "fakepkg", "1.3", "VALUE = 2\n")
    _wheel(wheels, "helperpkg", "1.1", "VALUE = 1\n")
    return project, wheels


def test_upgrade_names_the_first_bad_release_and_writes_only_what_passed(
        deps: Any, fake_project: tuple[Path, Path], tmp_path: Path) -> None:
    project, wheels = fake_project
    said: list[str] = []
    upgrader = deps.Upgrader(deps.load_config(project), ["--find-links", str(wheels), "--no-index"],
                             tmp_path / "work", said.append)
    # the checkout is edited while the trials run: the edits are kept (the tested range rewritten
    # in the edited file, not the file copied back from the trial's snapshot)
    (project / "ranges.toml").write_text('tested = ["helperpkg>=1.0,<=1.0"]\n# edited during the upgrade\n')
    result = upgrader.run()
    assert (project / "ranges.toml").read_text() == (
        'tested = ["helperpkg>=1.0,<=1.1"]\n# edited during the upgrade\n')
    assert result["broke"] == [{"package": "fakepkg", "first_bad": "1.2", "last_good": "1.1",
                                "tests": ["tests/test_app.py::test_fakepkg_answers_one"]}], said
    assert result["written"]
    locked = {(p.name, p.version) for p in deps.read_lock(project / "locks" / "app.txt")}
    assert locked == {("fakepkg", "1.1"), ("helperpkg", "1.1")}  # the rest moved; fakepkg held below 1.2
    assert deps.stale(deps.load_config(project)) == []


def test_check_says_how_far_behind_without_changing_anything(deps: Any, fake_project: tuple[Path, Path]) -> None:
    project, wheels = fake_project
    before = (project / "locks" / "app.txt").read_text()
    late = deps.behind(deps.load_config(project), ["--find-links", str(wheels), "--no-index"])
    assert late == {"app": [("fakepkg", "1.0", "1.3"), ("helperpkg", "1.0", "1.1")]}
    assert (project / "locks" / "app.txt").read_text() == before
