"""``irtcat local ...``: up, down, invoke, demo, calibrate."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..demo import DEFAULT_TABLETS
from .common import DATA_DIR, CliError, emit


def add_local_parser(sub: Any, handler: Callable[[argparse.Namespace], int]) -> None:
    """Register the ``local`` command group on the main parser."""
    local = sub.add_parser("local", help="the whole pipeline on this machine (no AWS, no Docker)")
    cmds = local.add_subparsers(dest="local_command", required=True)

    up = cmds.add_parser("up", help="start the local stack and keep it up until Ctrl-C")
    up.add_argument("--port", type=int, default=4566, help="emulator port (0: any free port)")
    up.add_argument("--host", default="127.0.0.1",
                    help="address the emulator listens on; 0.0.0.0 lets Docker containers (sam local) reach it")
    up.add_argument("--data-dir", type=Path, default=DATA_DIR,
                    help="the stack's state persists in DATA_DIR/state: a stack started on it again (after "
                         "'local down', Ctrl-C or kill -9) holds what this one held")
    up.add_argument("--fresh", action="store_true", help="discard the state kept in DATA_DIR/state and start empty")
    up.add_argument("--memory-only", action="store_true", help="keep no state on disk")
    up.add_argument("--fsync", action="store_true",
                    help="fsync every journaled change (survives a machine crash too, at a cost per write)")
    up.add_argument("--shards", type=int, default=None, help="override StreamShardCount")
    up.add_argument("--batch-size", type=int, default=None, help="override PipeBatchSize")
    up.add_argument("--parallelization", type=int, default=None, choices=range(1, 11), metavar="1-10",
                    help="override PipeParallelization (batches in flight per shard)")
    up.add_argument("--demo-bank", action="store_true", help="load the demo bank and test")
    up.add_argument("--accounts", type=int, default=3, metavar="N",
                    help="sign-in accounts to create: student-0001..N and teacher-0001 (password printed)")
    up.add_argument("--api-port", type=int, default=3000, help="the HTTP API and tablet app (0: any free port)")
    up.set_defaults(fn=handler)

    down = cmds.add_parser("down", help="stop a stack started with 'irtcat local up'")
    down.add_argument("--data-dir", type=Path, default=DATA_DIR)
    down.set_defaults(fn=handler)

    inv = cmds.add_parser("invoke", help="run one function's handler as the template declares it")
    inv.add_argument("function", help="logical id (UpdateThetaFunction) or handler folder (update_theta)")
    inv.add_argument("-e", "--event", type=Path, help="event JSON file (default: {})")
    inv.add_argument("--data-dir", type=Path, default=DATA_DIR)
    inv.set_defaults(fn=handler)

    demo = cmds.add_parser("demo", help="simulated tablets take tests through the whole local pipeline")
    demo.add_argument("--students", type=int, default=DEFAULT_TABLETS,
                      help=f"simulated tablets ({DEFAULT_TABLETS} keep the pipeline busy for about half a minute)")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--items", type=int, default=500, help="operational items in the demo bank")
    demo.add_argument("--pretest", type=int, default=0, help="pretest items seeded into the tests")
    demo.add_argument("--models", help="cycle the bank's items through models, e.g. 3PL,GRM,GPCM (partial-credit "
                                       "items: 4 options, each earning a category)")
    demo.add_argument("--bank", type=Path, nargs="+", metavar="PATH",
                      help="run on imported items: QTI packages, folders or sheets (irtcat bank import)")
    demo.add_argument("--parameters", type=Path, help="with --bank: CSV item_id,model,a,b,c (the rest are pretest)")
    demo.add_argument("--duplicates", type=float, default=0.05, help="share of answers a tablet resends")
    demo.add_argument("--shards", type=int, default=2)
    demo.add_argument("--batch-size", type=int, default=10)
    demo.add_argument("--report-dir", type=Path, default=Path("report"))
    demo.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    demo.set_defaults(fn=handler)

    cal = cmds.add_parser("calibrate", help="run the calibration state machine on the local stack (pretest items "
                                            "-> new bank version)")
    cal.add_argument("--bank-id", default="demo-math")
    cal.add_argument("--students", type=int, default=150,
                     help="with no stack up: simulated tablets whose answers are calibrated (demo traffic)")
    cal.add_argument("--pretest", type=int, default=2, help="with no stack up: pretest items in the demo test")
    cal.add_argument("--models", help="with no stack up: cycle the demo bank's items through models, e.g. "
                                      "3PL,GRM,GPCM (pretest items of each model are calibrated together)")
    cal.add_argument("--shards", type=int, default=None, help="E-step shards (default: by volume)")
    # the demo's traffic gives a pretest item ~100 answers, far fewer than production's gates
    # (irtcat.domain.promotion.GATES) ask for: the demo passes its own, smaller ones
    cal.add_argument("--promote-n", type=int, default=100, help="responses a pretest item needs to be promoted "
                                                                "(production default: 500)")
    cal.add_argument("--promote-se", type=float, default=0.4, help="largest SE(b) of a promoted item "
                                                                   "(production default: 0.3)")
    cal.add_argument("--data-dir", type=Path, default=DATA_DIR)
    cal.add_argument("--json", action="store_true", help="print the run's summary as JSON on stdout")
    cal.set_defaults(fn=handler)


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    out = {}
    if getattr(args, "shards", None):
        out["StreamShardCount"] = str(args.shards)
    if getattr(args, "batch_size", None):
        out["PipeBatchSize"] = str(args.batch_size)
    if getattr(args, "parallelization", None):
        out["PipeParallelization"] = str(args.parallelization)
    return out


def up(args: argparse.Namespace) -> int:
    from ..demo.run import load_demo_bank
    from ..emulator.runtime import LocalRuntime, StateMismatch

    data_dir: Path = args.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    state_file = data_dir / "runtime.json"
    if state_file.exists() and _alive(json.loads(state_file.read_text()).get("pid", 0)):
        raise CliError(f"a local stack is already up (see {state_file})")
    state_dir = None if args.memory_only else data_dir / "state"
    if state_dir is not None and args.fresh:
        shutil.rmtree(state_dir, ignore_errors=True)
    try:
        rt = LocalRuntime.up(port=args.port, parameters=_overrides(args), data_dir=state_dir, fsync=args.fsync,
                             host=args.host)
    except (StateMismatch, ValueError) as exc:  # a folder of another stack, or a journal that is not one
        raise CliError(str(exc)) from None
    api_url = rt.start_api(port=args.api_port)
    if args.demo_bank:
        load_demo_bank(rt)
    accounts: dict[str, Any] = {}
    if args.accounts > 0:
        from ..demo.run import demo_password

        password = demo_password()
        users = [f"student-{k:04d}" for k in range(1, args.accounts + 1)]
        pool = rt.accounts()
        for user in users:
            pool.provision(user, password)
        pool.provision("teacher-0001", password, teacher=True)
        accounts = {"students": users, "teachers": ["teacher-0001"], "password": password}
    outputs = rt.stack.outputs()
    from ..emulator.lifetime import stack_group

    info = {"pid": os.getpid(), "process_group": stack_group(), "endpoint": rt.endpoint, "api_url": api_url,
            "outputs": outputs,
            "functions": sorted(f.logical_id for f in rt.stack.functions.values()),
            "parameters": _overrides(args), "started_seconds": round(rt.started_seconds, 2),
            "accounts": accounts}
    state_file.write_text(json.dumps(info, indent=2))
    # `sam local invoke|start-api --env-vars` against this stack, from a container (docs/deploy.md)
    sam_env = data_dir / "sam-env.json"
    sam_env.write_text(json.dumps(rt.stack.sam_env_vars(f"http://host.docker.internal:{rt.server.port}"), indent=2))
    print(f"irtcat local stack up in {rt.started_seconds:.1f}s at {rt.endpoint}", file=sys.stderr)
    if state_dir is not None and rt.replayed is not None:
        stale = f" ({rt.replayed.failed} no longer apply, e.g. {rt.replayed.failures[0]})" if rt.replayed.failed else ""
        print(f"  state in {state_dir}: {rt.replayed.requests} changes replayed{stale}", file=sys.stderr)
    print(f"  HTTP API and tablet app: {api_url}/  (sessions: {api_url}/sessions)", file=sys.stderr)
    print(f"  export AWS_ENDPOINT_URL={rt.endpoint} AWS_DEFAULT_REGION=us-east-1 "
          "AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local", file=sys.stderr)
    for key, value in outputs.items():
        print(f"  {key:24s} {value}", file=sys.stderr)
    if accounts:
        print(f"  sign in as {accounts['students'][0]}..{accounts['students'][-1]} (tablet app) or teacher-0001 "
              f"({api_url}/teacher.html), password {accounts['password']}", file=sys.stderr)
    print(f"  sam local invoke FUNCTION --env-vars {sam_env} --add-host host.docker.internal:host-gateway"
          + ("" if args.host == "0.0.0.0" else "  (start with --host 0.0.0.0 for that)"), file=sys.stderr)
    print("Ctrl-C (or 'irtcat local down') stops it.", file=sys.stderr)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        rt.down()
        state_file.unlink(missing_ok=True)
        print("irtcat local stack stopped", file=sys.stderr)
    return 0


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    status = Path(f"/proc/{pid}/status")
    if status.exists():  # an exited process that its parent has not reaped yet is not running
        state = next((line for line in status.read_text().splitlines() if line.startswith("State:")), "")
        return "zombie" not in state and "\tZ" not in state
    return True


def _use_running_stack(state_file: Path) -> dict[str, Any] | None:
    """The stack of ``irtcat local up`` if it is up (boto3 is then pointed at it), else None."""
    if not (state_file.exists() and _alive(json.loads(state_file.read_text()).get("pid", 0))):
        return None
    from ..emulator.server import use_endpoint

    info: dict[str, Any] = json.loads(state_file.read_text())
    use_endpoint(info["endpoint"])
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    return info


def down(args: argparse.Namespace) -> int:
    state_file: Path = args.data_dir / "runtime.json"
    if not state_file.exists():
        print("irtcat: no local stack is up", file=sys.stderr)
        return 0
    from ..emulator.lifetime import stop_group

    info = json.loads(state_file.read_text())
    pid, group = int(info.get("pid", 0)), int(info.get("process_group") or 0)
    if not _alive(pid):
        state_file.unlink(missing_ok=True)
        left = stop_group(group) if group else 0  # a killed stack's children, should any remain
        print("irtcat: the local stack had already stopped"
              + (f"; stopped what was left of its processes (group {group})" if left else ""), file=sys.stderr)
        return 0
    os.kill(pid, signal.SIGTERM)
    for _ in range(300):
        if not _alive(pid):
            if group:
                stop_group(group)
            print("irtcat local stack stopped", file=sys.stderr)
            return 0
        time.sleep(0.1)
    raise CliError(f"process {pid} did not stop")


def invoke(args: argparse.Namespace) -> int:
    from ..demo.samples import seed_fixtures
    from ..emulator.inprocess import InProcessFunction, log_to_stderr, shared_environment
    from ..emulator.runtime import project_root
    from ..emulator.stack import plan

    event: Any = {}
    if args.event:
        try:
            event = json.loads(Path(args.event).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read event {args.event}: {exc}") from None
    state_file: Path = args.data_dir / "runtime.json"
    server = None
    parameters: dict[str, str] = {}
    info = _use_running_stack(state_file)
    if info is not None:
        parameters = info.get("parameters", {})
        stack = plan(project_root(), parameters=parameters)
        print(f"[irtcat] against the local stack at {info['endpoint']}", file=sys.stderr)
    else:
        from ..emulator.server import EmulatorServer
        from ..emulator.stack import deploy

        os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
        server = EmulatorServer({}, port=0)
        server.start()
        stack = deploy(project_root())
        server.gateway.functions.update(stack.runners)
        env = next(iter(stack.functions.values())).environment
        seed_fixtures(project_root(), env["TABLE_NAME"], env["BANK_BUCKET"])
        print("[irtcat] no local stack is up: using an in-process emulator with the events/ fixtures",
              file=sys.stderr)
    try:
        name = args.function
        candidates = [f for f in stack.functions.values()
                      if name in (f.logical_id, f.name, Path(f.code_dir).name)]
        if not candidates:
            known = ", ".join(sorted(f.logical_id for f in stack.functions.values()))
            raise CliError(f"no function {name!r} in template.yaml (known: {known})")
        spec = candidates[0]
        in_process = [InProcessFunction(f) for f in stack.functions.values()]
        shared_environment(in_process)
        result = next(f for f in in_process if f.spec is spec).invoke(event)
        log_to_stderr(result)
        print(json.dumps(result.payload, indent=2))
        print(f"[irtcat] {spec.logical_id}: {result.duration_ms:.1f} ms"
              + (f", function error ({result.error})" if result.error else ""), file=sys.stderr)
        return 1 if result.error else 0
    finally:
        if server is not None:
            server.stop()


def demo(args: argparse.Namespace) -> int:
    from ..demo.run import run_demo

    if args.students < 1:
        raise CliError("--students must be >= 1")
    if not 0 <= args.duplicates < 1:
        raise CliError("--duplicates must be in [0, 1)")
    bar = None
    total_guess = args.students * 27
    try:
        from tqdm import tqdm

        bar = tqdm(total=total_guess, desc="answers", unit="ans", file=sys.stderr,
                   disable=not sys.stderr.isatty())
    except ImportError:
        pass
    last = [0]

    def progress(done: int, _: int) -> None:
        if bar is not None:
            bar.update(done - last[0])
            last[0] = done

    bank_path = _imported(args) if args.bank else None
    print(f"[irtcat] starting the local stack and {args.students} simulated tablets...", file=sys.stderr)
    summary = run_demo(students=args.students, seed=args.seed, items=args.items, pretest=args.pretest,
                       duplicate_rate=args.duplicates, report_dir=args.report_dir, shards=args.shards,
                       batch_size=args.batch_size, progress=progress,
                       models=_models(args.models), bank_path=bank_path)
    if bar is not None:
        bar.close()
    emit(args, summary, _demo_summary(summary))
    failed = summary["answers_lost"] > 0 or summary["executions_failed"] > 0 or summary["tablet_errors"]
    return 1 if failed else 0


def _imported(args: argparse.Namespace) -> Path:
    """``--bank``: the inputs imported into ``.irtcat/imported/bank.json`` (refusals printed;
    a bank too small for a test is refused when the demo loads it)."""
    from ..importer.build import import_bank
    from ..importer.safety import Refused

    out = DATA_DIR / "imported" / "bank.json"
    shutil.rmtree(out.parent, ignore_errors=True)
    out.parent.mkdir(parents=True)
    try:
        bank, report = import_bank(list(args.bank), out, bank_id="imported", parameters=args.parameters)
    except Refused as exc:
        raise CliError(str(exc)) from None
    for r in report.refused:
        print(f"[irtcat] refused {r['item_id'] or '-'} ({r['source']}): {r['reason']}", file=sys.stderr)
    if bank is None:
        raise CliError("no item could be imported from --bank")
    print(f"[irtcat] imported {len(report.imported)} item(s) into {out}", file=sys.stderr)
    return out


def _demo_summary(s: dict[str, Any]) -> str:
    rows = [
        ("sessions (finished)", f"{s['sessions']} ({s['sessions_finished']})"),
        ("answers published", f"{s['answers_published']} ({s['answers_unique']} unique, "
                              f"{s['answers_published'] - s['answers_unique']} resent)"),
        ("answers applied", s["answers_applied"]),
        ("answers in history", s["answers_in_history"]),
        ("duplicates acknowledged", s["duplicates_acknowledged"]),
        ("answers lost", s["answers_lost"]),
        ("executions (failed)", f"{s['executions']} ({s['executions_failed']})"),
        ("mean test length", f"{s['mean_test_length']:.1f} items"),
        ("RMSE vs true theta", f"{s['rmse']:.3f}" if s["rmse"] is not None else "-"),
        # a closed loop: each tablet waits for its next item, so few tablets cannot fill the
        # pipeline (README, Benchmarks: its capacity is measured with more tablets)
        ("throughput", f"{s['answers_per_second']:.1f} answers/s"
                       + (f" ({s['sustained_answers_per_second']:.1f} once every tablet runs)"
                          if s.get("sustained_answers_per_second") else "")
                       + f" from {s['sessions']} tablets that each wait for their next item"),
        ("publish -> next item", f"p50 {s['latency_p50_ms']:.0f} ms, p99 {s['latency_p99_ms']:.0f} ms"
         if s["latency_p50_ms"] is not None else "-"),
        ("stack start-up", f"{s['startup_seconds']:.1f} s"
                           + (f" (every function warm at {s['warm_seconds']:.1f} s)" if s.get("warm_seconds") else "")),
        ("report", s["report_dir"]),
        ("dashboard", s.get("dashboard", "-")),
    ]
    lines = [f"{key:26s} {value}" for key, value in rows]
    return "\n".join(lines + [f"tablet error: {err}" for err in s["tablet_errors"]])


def _models(value: str | None) -> list[str] | None:
    """``--models 3PL,GRM,GPCM`` as a list (None: the bank's one model)."""
    return [m.strip() for m in value.split(",") if m.strip()] if value else None


def calibrate(args: argparse.Namespace) -> int:
    """Against the stack of ``irtcat local up`` when one is up; otherwise start one, run demo
    traffic with pretest items through it (``--students``, ``--pretest``), then calibrate."""
    from pydantic import ValidationError

    from ..domain.calibration_job import CalibrationRequest
    from .local_calibration import format_summary, run_calibration

    try:
        request = CalibrationRequest(bank_id=args.bank_id, shards=args.shards, promote_n=args.promote_n,
                                     promote_se_b=args.promote_se)
    except ValidationError as exc:
        err = exc.errors()[0]
        option = {"promote_se_b": "promote-se"}.get(str(err["loc"][0]), str(err["loc"][0]).replace("_", "-"))
        raise CliError(f"--{option}: {err['msg']}") from None
    state_file: Path = args.data_dir / "runtime.json"
    info = _use_running_stack(state_file)
    if info is not None:
        outputs = info["outputs"]
        print(f"[irtcat] calibrating {args.bank_id} on the local stack at {info['endpoint']}", file=sys.stderr)
        summary = run_calibration(outputs, str(outputs["BankBucketName"]), request)
    else:
        from ..demo.run import run_demo
        from ..emulator.runtime import LocalRuntime

        if args.students < 1:
            raise CliError("--students must be >= 1")
        if args.pretest < 1:
            raise CliError("--pretest must be >= 1 (there must be something to calibrate)")
        print(f"[irtcat] no local stack is up: starting one, and {args.students} simulated tablets answer "
              f"{args.pretest} pretest item(s) among their test...", file=sys.stderr)
        with LocalRuntime.up(parameters={"StreamShardCount": "2"}) as rt:
            demo_summary = run_demo(students=args.students, pretest=args.pretest, rt=rt,
                                    report_dir=args.data_dir / "calibration-demo", models=_models(args.models))
            print(f"[irtcat] demo: {demo_summary['answers_applied']} answers applied in "
                  f"{demo_summary['seconds']:.0f} s; calibrating...", file=sys.stderr)
            outputs = rt.stack.outputs()
            summary = run_calibration(outputs, str(outputs["BankBucketName"]), request)
    emit(args, summary, format_summary(summary))
    return 0 if summary["status"] == "SUCCEEDED" else 1
