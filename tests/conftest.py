"""Shared fixtures: the project root, AWS-free credentials, moto in-process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture()
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Credentials that can reach nothing real, and no endpoint override."""
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    for key in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL_")]:  # a local stack's services
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    from irtcat.adapters.wiring import reset

    reset()
    yield
    reset()


@pytest.fixture()
def moto_stack(fake_aws: None, root: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Every resource of template.yaml in in-process moto, with the events/ fixtures loaded."""
    from irtcat.demo.samples import seed_fixtures
    from irtcat.emulator import moto_patches
    from irtcat.emulator.inprocess import shared_environment
    from irtcat.emulator.stack import deploy
    from moto import mock_aws

    # the emulator's patches (Athena's rest-json routes among them), whichever test runs first:
    # a file run alone must see the moto the local runtime sees
    moto_patches.apply()
    saved = dict(os.environ)
    with mock_aws():
        stack = deploy(root)
        shared_environment(list(stack.runners.values()))  # type: ignore[arg-type]
        env = next(iter(stack.functions.values())).environment
        seed_fixtures(root, env["TABLE_NAME"], env["BANK_BUCKET"])
        yield stack
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def deps() -> Any:
    """``locks/deps.py``, the lock tool (a script beside the locks, not part of the package)."""
    import importlib.util
    import sys

    if "irtcat_deps" not in sys.modules:
        spec = importlib.util.spec_from_file_location("irtcat_deps", ROOT / "locks" / "deps.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["irtcat_deps"] = module  # dataclasses look their module up while it loads
        spec.loader.exec_module(module)
    return sys.modules["irtcat_deps"]

