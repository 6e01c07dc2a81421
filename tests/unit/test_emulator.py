"""The emulator server's process-level settings."""

from __future__ import annotations

import pytest
from irtcat.emulator import server


def test_pointing_at_a_running_stack_drops_another_stacks_service_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:2")  # a stale stack's process
    server.use_endpoint("http://127.0.0.1:3")
    import os

    assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:3"
    assert "AWS_ENDPOINT_URL_DYNAMODB" not in os.environ
