"""Lambda containers of the local runtime, forked from the zygote and as fresh interpreters."""

from __future__ import annotations

import os
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from irtcat.emulator import zygote as zygote_module
from irtcat.emulator.containers import ContainerPool
from irtcat.emulator.function import FunctionSpec
from irtcat.emulator.zygote import Zygote, ZygoteDied, fork_enabled, zygote

HANDLER = textwrap.dedent("""
    import os, sys, time
    print("loaded")  # a module's own output is never part of the protocol

    def handler(event, context):
        print("invoked")
        if event.get("sleep"):
            time.sleep(event["sleep"])
        if event.get("fail"):
            raise ValueError("asked to fail")
        comm = open("/proc/self/comm").read().strip() if os.path.exists("/proc/self/comm") else None
        return {"pid": os.getpid(), "ppid": os.getppid(), "comm": comm, "fn_var": os.environ.get("FN_VAR"),
                "parent_var": os.environ.get("IRTCAT_TEST_PARENT_VAR"),
                "function_name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME")}
""")


@pytest.fixture(params=["fork", "fresh"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("IRTCAT_LOCAL_FORK", "1" if request.param == "fork" else "0")
    return str(request.param)


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(HANDLER)
    (tmp_path / "broken.py").write_text("raise ImportError('no such dependency')\n")
    return tmp_path


def _pool(code_dir: Path, handler: str = "app.handler", timeout_s: float = 5.0, limit: int = 3) -> ContainerPool:
    spec = FunctionSpec("EchoFunction", "irtcat-echo", str(code_dir), handler, {"FN_VAR": "from-template"},
                        timeout_s, 128)
    return ContainerPool(spec, limit=limit)


@pytest.fixture
def pools() -> Iterator[list[ContainerPool]]:
    made: list[ContainerPool] = []
    yield made
    for pool in made:
        pool.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a killed child not yet reaped is a zombie
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_container_runs_its_handler_with_the_functions_and_the_callers_environment(
        mode: str, code_dir: Path, pools: list[ContainerPool], monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    if mode == "fork":
        zygote()  # started before the variable is set: each fork must carry the caller's environment
    monkeypatch.setenv("IRTCAT_TEST_PARENT_VAR", f"set-late-{mode}")
    pools.append(pool := _pool(code_dir))
    out = pool.invoke({})
    assert out.error is None, out.payload
    assert out.payload["fn_var"] == "from-template"
    assert out.payload["parent_var"] == f"set-late-{mode}"
    assert out.payload["function_name"] == "irtcat-echo"
    assert out.payload["pid"] not in (os.getpid(), None)
    forked = out.payload["ppid"] != os.getpid()  # a fork's parent is the zygote
    assert forked is (mode == "fork")
    if forked:
        assert out.payload["comm"] == "EchoFunction", "top and ps name a forked container by its function"
    assert "invoked" in out.logs
    again = pool.invoke({})
    assert again.payload["pid"] == out.payload["pid"], "a warm container serves the next event"
    assert "invoked" not in capfd.readouterr().out, "a handler's prints must not reach the caller's stdout"


def test_a_handler_error_is_lambdas_unhandled_error_and_the_container_lives_on(
        mode: str, code_dir: Path, pools: list[ContainerPool]) -> None:
    pools.append(pool := _pool(code_dir))
    first = pool.invoke({})
    failed = pool.invoke({"fail": True})
    assert failed.error == "Unhandled"
    assert failed.payload["errorType"] == "ValueError"
    assert pool.invoke({}).payload["pid"] == first.payload["pid"]


def test_an_overrunning_handler_is_killed_and_the_next_event_gets_a_new_container(
        mode: str, code_dir: Path, pools: list[ContainerPool]) -> None:
    pools.append(pool := _pool(code_dir, timeout_s=0.5))
    first = pool.invoke({})
    pid = first.payload["pid"]
    out = pool.invoke({"sleep": 30})
    assert out.error == "Unhandled"
    assert out.payload["errorType"] == "TimeoutError"
    assert not _alive(pid), "the timed-out container must be killed"
    after = pool.invoke({})
    assert after.error is None and after.payload["pid"] != pid
    assert pool.cold_starts == 2


def test_a_handler_that_cannot_load_is_an_init_error(mode: str, code_dir: Path, pools: list[ContainerPool]) -> None:
    pools.append(pool := _pool(code_dir, handler="broken.handler"))
    out = pool.invoke({})
    assert out.error == "Unhandled"
    assert out.payload["errorType"] == "Runtime.InitError"
    assert "no such dependency" in out.payload["errorMessage"]


def test_busy_containers_make_the_pool_scale_out_up_to_its_limit(
        mode: str, code_dir: Path, pools: list[ContainerPool]) -> None:
    pools.append(pool := _pool(code_dir, limit=2))
    pool.invoke({})  # one warm container
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(pool.invoke({"sleep": 0.8}))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pids = {r.payload["pid"] for r in results}
    assert all(r.error is None for r in results)
    assert len(pids) == 2, "three concurrent events on a limit of two: two containers, one reused"
    assert pool.cold_starts == 2


def test_the_zygote_ends_when_its_parent_lets_go() -> None:
    zygote = Zygote()
    assert zygote.process.poll() is None
    zygote.close()
    assert zygote.process.wait(timeout=10) == 0


def test_containers_fork_by_default_on_linux_and_the_setting_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IRTCAT_LOCAL_FORK", raising=False)
    assert fork_enabled() is True  # the suite runs on Linux
    monkeypatch.setenv("IRTCAT_LOCAL_FORK", "0")
    assert fork_enabled() is False
    monkeypatch.setenv("IRTCAT_LOCAL_FORK", "off")
    assert fork_enabled() is False
    monkeypatch.setenv("IRTCAT_LOCAL_FORK", "maybe")
    with pytest.raises(ValueError, match="IRTCAT_LOCAL_FORK='maybe': expected 1"):
        fork_enabled()


def test_without_a_zygote_containers_start_as_fresh_interpreters(
        code_dir: Path, pools: list[ContainerPool], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def broken() -> Zygote:
        raise ZygoteDied("the container zygote did not start: simulated")

    monkeypatch.setenv("IRTCAT_LOCAL_FORK", "1")
    monkeypatch.setattr(zygote_module, "_ZYGOTE", None)
    monkeypatch.setattr(zygote_module, "_ZYGOTE_FAILED", None)
    monkeypatch.setattr(zygote_module, "Zygote", broken)
    pools.append(pool := _pool(code_dir))
    out = pool.invoke({})
    assert out.error is None, out.payload
    assert out.payload["ppid"] == os.getpid()
    assert pool.invoke({}).error is None
    assert capsys.readouterr().err.count("containers start as fresh interpreters") == 1
