"""Benchmarks of what a Lambda loads and starts: handler times, cold imports, the artefacts
`sam build` makes, container start-up in the local runtime."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from harness import ROOT
from irtcat.capacity.model import ANSWER_CHAIN, handler_folder


def bench_handlers() -> dict[str, Any]:
    """Per-answer handler work without AWS (in-memory adapters) and cold-start imports."""
    import base64
    import uuid
    from datetime import UTC, datetime

    from irtcat.adapters.memory import MemoryBanks, MemoryHistory, MemorySessions, MemoryStudents
    from irtcat.domain.api import StartSessionRequest
    from irtcat.domain.generate import generate_bank
    from irtcat.domain.policy import TestDefinition
    from irtcat.domain.scoring import simulated_choice
    from irtcat.domain.steps import (
        Step,
        check_end_condition,
        commit_step,
        select_next_item,
        start_session,
        update_theta,
    )

    rng = np.random.default_rng(0)
    bank = generate_bank(500, seed=1)
    banks = MemoryBanks()
    banks.publish(bank)
    banks.put_test(TestDefinition(test_id="t", bank_id=bank.bank_id))
    history = MemoryHistory()
    sessions = MemorySessions(catalog=banks, students=MemoryStudents(), history=history)
    timings: dict[str, list[float]] = {"update_theta": [], "check_end_condition": [], "select_next_item": [],
                                      "commit_step": []}
    for k in range(40):
        view, _ = start_session(StartSessionRequest(student_id=f"s{k}", test_id="t"), sessions, MemoryStudents(), banks)
        for _ in range(20):
            state = sessions.get(view.session_id)
            if state is None or state.status != "active" or state.current is None:
                break
            shown = [(o.id, o.text) for o in (state.view(bank).item.options or [])]  # type: ignore[union-attr]
            choice = simulated_choice(bank.item(state.current.item_id), shown, bool(k % 2), rng)
            ev = {"schema_version": 2, "event_id": str(uuid.uuid4()), "session_id": state.session_id,
                  "student_id": state.student_id, "item_id": state.current.item_id, "seq": state.current.seq,
                  "choice": choice, "answered_at": datetime.now(UTC).isoformat()}
            rec = {"data": base64.b64encode(json.dumps(ev).encode()).decode()}
            t0 = time.perf_counter()
            step = update_theta(Step(record=rec), sessions, banks)
            t1 = time.perf_counter()
            step = check_end_condition(step, banks)
            t2 = time.perf_counter()
            step = select_next_item(step, banks)
            t3 = time.perf_counter()
            commit_step(step, sessions)
            t4 = time.perf_counter()
            for key, dt in zip(timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                timings[key].append(dt * 1e3)
    out: dict[str, Any] = {f"handler_{k}_ms": statistics.median(v) for k, v in timings.items()}
    out["handler_total_ms"] = sum(out.values())
    out.update(cold_starts())
    return out


PER_ANSWER_HANDLERS = tuple(handler_folder(f) for f in ANSWER_CHAIN)
_HANDLER_ENV = {"TABLE_NAME": "t", "BANK_BUCKET": "b", "HISTORY_STREAM": "h", "HISTORY_BUCKET": "h",
                "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"}


def cold_starts(repeat: int = 5) -> dict[str, Any]:
    """Each per-answer handler's cold start in a fresh interpreter: the module import, then the
    first validation of its sample event and dump of the result (pydantic builds the schemas of
    the models a handler uses on first use). AWS clients (boto3, ~320 ms) are created on the
    first AWS call and are not counted here. Median of ``repeat`` runs."""
    out: dict[str, Any] = {}
    for name in PER_ANSWER_HANDLERS:
        code = (f"import time, json; t=time.perf_counter(); import sys; sys.path.insert(0, 'functions/{name}'); "
                "import app; t1=time.perf_counter(); from irtcat.domain.steps import Step; "
                f"Step.model_validate(json.load(open('events/{name}.json'))).model_dump(mode='json'); "
                "t2=time.perf_counter(); print((t1-t)*1000, (t2-t1)*1000)")
        imports, first = [], []
        for _ in range(repeat):
            run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                                 env={**os.environ, **_HANDLER_ENV}, check=True)
            a, b = run.stdout.split()
            imports.append(float(a))
            first.append(float(b))
        out[f"cold_import_{name}_ms"] = statistics.median(imports)
        out[f"cold_first_validation_{name}_ms"] = statistics.median(first)
        out[f"scipy_on_path_{name}"] = _imports_scipy(name)
    out["cold_import_max_ms"] = max(out[f"cold_import_{n}_ms"] for n in PER_ANSWER_HANDLERS)
    out["scipy_on_per_answer_path"] = any(out[f"scipy_on_path_{n}"] for n in PER_ANSWER_HANDLERS)
    return out


def _imports_scipy(name: str) -> bool:
    code = (f"import sys; sys.path.insert(0, 'functions/{name}'); import app; "
            "print(any(m == 'scipy' or m.startswith('scipy.') for m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, **_HANDLER_ENV})
    return run.stdout.strip().endswith("True")

def bench_artefacts(runs: int = 5) -> dict[str, Any]:
    """Cold import of a handler as Lambda loads it from the built layers (shared/Makefile's
    targets) and boto3 alone (what the runtime adds), on Python 3.12, median of ``runs`` fresh
    interpreters: a calibration handler (both layers) and a per-answer one (the shared layer)."""
    import shutil
    import tempfile

    pythons = sorted((Path.home() / ".pyenv" / "versions").glob("3.12*/bin/python3.12"))
    if not pythons:
        return {"artefacts_skipped": "no Python 3.12"}
    wheels = ["--only-binary=:all:", "--implementation", "cp", "--python-version", "3.12",
              "--platform", "manylinux2014_x86_64"]
    out: dict[str, Any] = {"artefacts_python": str(pythons[-1])}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "shared", work / "source", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        for layer in ("SharedLayer", "ScipyLayer"):
            subprocess.run(["make", "-s", "-C", str(work / "source"), f"build-{layer}", f"ARTIFACTS_DIR={work / layer}",
                            f"PYTHON={sys.executable}"], check=True, capture_output=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *wheels, "--target", str(work / "runtime"),
                        "boto3"], check=True, capture_output=True)
        for name, step, layers in (("calibration_e_step", "calibration_e_step", ("SharedLayer", "ScipyLayer")),
                                   ("update_theta", "update_theta", ("SharedLayer",))):
            path = os.pathsep.join([*(str(work / layer / "python") for layer in layers), str(work / "runtime")])
            code = ("import time, importlib.util; t = time.perf_counter()\n"
                    f"spec = importlib.util.spec_from_file_location('app', '{ROOT}/functions/{step}/app.py')\n"
                    "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
                    "print((time.perf_counter() - t) * 1000)")
            times = [float(subprocess.run([str(pythons[-1]), "-s", "-c", code], check=True, capture_output=True,
                                          text=True, env={"PYTHONPATH": path, "AWS_DEFAULT_REGION": "us-east-1",
                                                          "PATH": os.environ["PATH"]}).stdout)
                     for _ in range(runs)]
            out[f"artefacts_cold_import_{name}_ms"] = statistics.median(times)
    return out

def bench_container_start(n: int = 15) -> dict[str, Any]:
    """A Lambda container's cold start (process start to handler loaded and ready), UpdateTheta:
    forked from the zygote (irtcat.emulator.zygote) vs started by the standard library's
    forkserver with the same modules preloaded; and each server's own start."""
    import multiprocessing
    import socket
    from dataclasses import asdict

    from irtcat.emulator.containers import Container
    from irtcat.emulator.inprocess import serve_socket
    from irtcat.emulator.stack import plan
    from irtcat.emulator.zygote import _SINGLE_THREADED, PRELOAD, zygote

    spec = next(s for s in plan(ROOT).functions.values() if s.logical_id == "UpdateThetaFunction")
    os.environ.setdefault("IRTCAT_LOCAL_FORK", "1")
    started = time.perf_counter()
    zygote()
    zygote_start = time.perf_counter() - started
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    env = {**os.environ, **_SINGLE_THREADED}

    def forkserver_container() -> tuple[Any, socket.socket]:
        ours, theirs = socket.socketpair()
        process = ctx.Process(target=serve_socket, args=(asdict(spec), theirs, env), daemon=True)
        process.start()
        theirs.close()
        ours.makefile("r", encoding="utf-8").readline()  # "ready"
        return process, ours

    started = time.perf_counter()
    first, sock = forkserver_container()  # includes the fork server's own start and preload
    forkserver_first = time.perf_counter() - started
    first.kill()
    sock.close()
    zygote_ms, forkserver_ms = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        container = Container.start(spec)
        zygote_ms.append((time.perf_counter() - t0) * 1000)
        container.kill()
        t0 = time.perf_counter()
        process, sock = forkserver_container()
        forkserver_ms.append((time.perf_counter() - t0) * 1000)
        process.kill()
        process.join()
        sock.close()
    return {
        "container_start_zygote_ms": statistics.median(zygote_ms),
        "container_start_forkserver_ms": statistics.median(forkserver_ms),
        "container_start_forkserver_over_zygote": statistics.median(forkserver_ms) / statistics.median(zygote_ms),
        "container_start_zygote_server_s": zygote_start,
        "container_start_forkserver_first_s": forkserver_first,
    }


BENCHES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "handlers": lambda a: bench_handlers(),
    "container_start": lambda a: bench_container_start(),
    "artefacts": lambda a: bench_artefacts(),
}
