"""Benchmarks of the whole pipeline on the local stack: throughput and latency, the capacity
profile, persistence, batching, the soak and chaos runs, the door, the report, moto's patches."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from harness import ROOT, median_us, provenance
from irtcat.capacity.model import ANSWER_CHAIN, handler_folder
from lambdas import bench_handlers


def bench_pipeline(students: int, prefix: str = "pipeline", parallelization: int = 1) -> dict[str, Any]:
    """The demo through the local pipeline: answers/s with ``students`` closed-loop tablets."""
    from irtcat.demo.run import run_demo

    s = run_demo(students=students, report_dir=ROOT / ".irtcat" / "bench-report", shards=2, batch_size=10,
                 parallelization=parallelization)
    return {
        f"{prefix}_students": students,
        f"{prefix}_parallelization": parallelization,
        f"{prefix}_executions": s["executions"],
        f"{prefix}_answers_per_second": s["answers_per_second"],
        f"{prefix}_sustained_answers_per_second": s["sustained_answers_per_second"],
        f"{prefix}_latency_p50_ms": s["latency_p50_ms"],
        f"{prefix}_latency_p99_ms": s["latency_p99_ms"],
        f"{prefix}_answers_lost": s["answers_lost"],
        f"{prefix}_executions_failed": s["executions_failed"],
        f"{prefix}_startup_s": s["startup_seconds"],
        f"{prefix}_warm_s": s["warm_seconds"],
        f"{prefix}_polls_per_answer": s["polls_per_answer"],
    }


CAPACITY_PROFILE = ROOT / "shared" / "irtcat" / "capacity" / "profile.json"
# what a local run cannot measure; irtcat capacity states them beside its figures
CAPACITY_ASSUMPTIONS = {
    "aws_call_ms": {"value": 8.0, "why": "one DynamoDB, S3, Kinesis or Firehose call from a Lambda in the same "
                    "Region (DynamoDB promises single-digit milliseconds)"},
    "invoke_overhead_ms": {"value": 3.0, "why": "a warm invocation's billed time outside the domain code "
                           "(event parsing, Powertools logging and metrics)"},
    "task_transition_ms": {"value": 25.0, "why": "a Task state's Lambda invoke and the state transition, as "
                           "Express executions add to the handlers' time"},
    "handler_cpu_ms_default": {"value": 1.0, "why": "the domain code of a function the handlers benchmark "
                               "does not time (API, enrichment, history shipping)"},
}


# the profile of the layout that stored each session whole (its history and its policy inside),
# measured by the same capacity benchmark: the plan below prices both with the same prices
CAPACITY_BASELINE = ROOT / "benchmarks" / "baselines" / "capacity_whole_session_item.json"


def capacity_plans(profile: Any, students: int = 100_000, seconds_per_item: float = 30.0) -> dict[str, Any]:
    """``irtcat capacity --students 100000 --seconds-per-item 30`` on ``profile`` and on the
    whole-item baseline, with today's price table, and their ratio."""
    from irtcat.capacity.model import PriceTable, Profile, plan

    table = PriceTable.load()
    out: dict[str, Any] = {}
    for name, prof in (("compact", profile), ("whole_item", Profile.load(CAPACITY_BASELINE))):
        row = plan(students, seconds_per_item, prof, table)
        out[f"capacity_100k_{name}_usd_per_1000_answers"] = row["usd_per_1000_answers"]
        out[f"capacity_100k_{name}_dynamodb_usd_per_1000_answers"] = row["usd_per_1000_answers_by_service"]["dynamodb"]
        out[f"capacity_100k_{name}_write_units_per_second"] = row["dynamodb_write_units_per_second"]
        out[f"capacity_100k_{name}_read_units_per_second"] = row["dynamodb_read_units_per_second"]
        out[f"capacity_100k_{name}_warnings"] = len(row["warnings"])
        out[f"capacity_{name}_write_units_per_answer"] = prof.measured["write_units_per_answer"]
    out["capacity_100k_usd_ratio"] = (out["capacity_100k_compact_usd_per_1000_answers"]
                                      / out["capacity_100k_whole_item_usd_per_1000_answers"])
    return out


def bench_capacity(students: int) -> dict[str, Any]:
    """The per-answer profile of ``irtcat capacity``: the local demo with ``students`` tablets
    (AWS calls per answer by operation, Lambda invocations by function, the billed sizes,
    write units per commit with index copies) and the handlers' CPU per answer; written to
    shared/irtcat/capacity/profile.json. Then 100,000 students planned on it and on the
    whole-item baseline (benchmarks/baselines/), same prices."""
    from irtcat.demo.run import run_demo
    from irtcat.domain.steps import POLL_READ

    handlers = bench_handlers()
    s = run_demo(students=students, report_dir=ROOT / ".irtcat" / "bench-report", shards=2, batch_size=10)
    if "calls_per_answer" not in s or s["answers_lost"]:
        raise RuntimeError("the capacity run lost answers or restarted: no profile")
    names = {handler_folder(f): f for f in ANSWER_CHAIN if f"handler_{handler_folder(f)}_ms" in handlers}
    measured = {key: s[key] for key in ("calls_per_answer", "polls_per_answer", "answer_record_bytes",
                                        "history_records_per_answer", "history_record_bytes",
                                        "session_item_bytes", "session_item_bytes_max", "session_item_bytes_read",
                                        "write_units_per_answer", "index_write_units_per_answer",
                                        "commit_write_units", "commit_index_write_units", "mean_test_length")}
    measured["poll_read"] = POLL_READ
    measured["handler_cpu_ms"] = {fn: round(handlers[f"handler_{k}_ms"], 4) for k, fn in names.items()}
    profile = {"provenance": {**provenance("./dev bench --only capacity"), "tablets": str(students)},
               "measured": measured, "assumed": CAPACITY_ASSUMPTIONS}
    CAPACITY_PROFILE.write_text(json.dumps(profile, indent=2) + "\n")
    from irtcat.capacity.model import Profile

    return {**capacity_plans(Profile.load(CAPACITY_PROFILE)),
            "capacity_answers": s["answers_unique"], "capacity_session_item_bytes": s["session_item_bytes"],
            "capacity_session_item_bytes_max": s["session_item_bytes_max"],
            "capacity_write_units_per_answer": s["write_units_per_answer"],
            "capacity_commit_write_units": s["commit_write_units"],
            "capacity_commit_index_write_units": s["commit_index_write_units"],
            "capacity_history_record_bytes": s["history_record_bytes"],
            "capacity_lambda_invocations_per_answer": sum(v for k, v in s["calls_per_answer"].items()
                                                          if k.startswith("lambda:"))}


def bench_persistence(students: int, pairs: int = 2) -> dict[str, Any]:
    """What the local stack's persistence costs: the pipeline with ``students`` tablets on a
    stack that journals every state change to its data folder, and on one that keeps memory
    only, alternating ``pairs`` times in one run; then a restart on the data folder of the last
    journaled run (replay seconds, changes replayed, journal bytes per applied answer) and
    the same with ``fsync`` on every journaled change."""
    import shutil

    from irtcat.demo.run import run_demo
    from irtcat.emulator.runtime import LocalRuntime

    parameters = {"StreamShardCount": "2", "PipeBatchSize": "10", "PipeParallelization": "1"}
    state = ROOT / ".irtcat" / "bench-state"
    out: dict[str, Any] = {"persistence_students": students, "persistence_pairs": pairs}
    runs: dict[str, list[dict[str, Any]]] = {"memory": [], "journal": [], "fsync": []}
    for _ in range(pairs):
        for mode in ("memory", "journal", "fsync"):
            shutil.rmtree(state, ignore_errors=True)
            rt = LocalRuntime.up(parameters=parameters, data_dir=None if mode == "memory" else state,
                                 fsync=mode == "fsync")
            try:
                runs[mode].append(run_demo(students=students, report_dir=ROOT / ".irtcat" / "bench-report", rt=rt))
            finally:
                rt.down()
    for mode, summaries in runs.items():
        out[f"persistence_{mode}_answers_per_second"] = [round(s["answers_per_second"], 1) for s in summaries]
        out[f"persistence_{mode}_latency_p99_ms"] = [round(s["latency_p99_ms"]) for s in summaries]
        out[f"persistence_{mode}_answers_lost"] = sum(s["answers_lost"] for s in summaries)
    applied = runs["fsync"][-1]["answers_applied"]
    journal_bytes = sum(f.stat().st_size for f in state.glob("journal-*.jsonl"))
    started = time.perf_counter()
    rt = LocalRuntime.up(parameters=parameters, data_dir=state)
    try:
        out["persistence_restart_seconds"] = time.perf_counter() - started
        out["persistence_changes_replayed"] = rt.replayed.requests if rt.replayed else 0
        out["persistence_replay_failed"] = rt.replayed.failed if rt.replayed else 0
    finally:
        rt.down()
    out["persistence_answers_applied"] = applied
    out["persistence_journal_bytes_per_answer"] = journal_bytes / applied if applied else None
    return out

def bench_batch(trials: int = 8) -> dict[str, Any]:
    """One batch through the Pipe's enrichment and the answer state machine, locally: one answer
    of one session (the single-answer chain) against ten answers of ten sessions, alternating,
    ``trials`` times each on fresh sessions; the median seconds of each and their ratio (10 if
    a batch's answers run one after another, 1 if its sessions ran fully side by side)."""
    import base64
    import uuid as uuidlib
    from datetime import UTC, datetime

    from irtcat.demo.run import TEST_ID, load_demo_bank
    from irtcat.emulator.api import id_token_claims, start_session_event
    from irtcat.emulator.runtime import LocalRuntime

    rt = LocalRuntime.up(parameters={"StreamShardCount": "1", "PipeBatchSize": "10"})
    seq = [0]

    def answered_batch(sessions: int) -> list[dict[str, Any]]:
        records = []
        for _ in range(sessions):
            student = f"bench-{uuidlib.uuid4().hex[:12]}"
            view = json.loads(rt.invoke("StartSessionFunction", start_session_event(
                student, TEST_ID, claims=id_token_claims(student))).payload["body"])
            item = view["item"]
            event = {"schema_version": 2, "event_id": str(uuidlib.uuid4()), "session_id": view["session_id"],
                     "student_id": student, "item_id": item["item_id"], "seq": item["seq"],
                     "choice": item["options"][0]["id"] if item.get("options") else 7,
                     "answered_at": datetime.now(UTC).isoformat()}
            seq[0] += 1
            records.append({"eventSource": "aws:kinesis", "partitionKey": view["session_id"],
                            "sequenceNumber": str(seq[0]), "approximateArrivalTimestamp": time.time(),
                            "data": base64.b64encode(json.dumps(event).encode()).decode()})
        return records

    try:
        load_demo_bank(rt)
        rt.wait_warm()
        times: dict[int, list[float]] = {1: [], 10: []}
        for trial in range(trials + 1):
            for sessions in (1, 10):
                batch = answered_batch(sessions)
                started = time.perf_counter()
                ok, error = rt.pipe._enrich_and_run(batch)
                assert ok, error
                if trial:  # the first round warms every function's containers
                    times[sessions].append(time.perf_counter() - started)
    finally:
        rt.down()
    one, ten = statistics.median(times[1]), statistics.median(times[10])
    return {"batch_trials": trials, "batch_1_session_1_answer_s": one, "batch_10_sessions_10_answers_s": ten,
            "batch_ratio_10_to_1": ten / one}


def bench_soak(sessions: int = 200) -> dict[str, Any]:
    """The reliability soak (``irtcat.demo.run.run_soak``): must hold 0 lost, 0 double-applied,
    rejected == garbage; reports publish -> next-item latency."""
    from irtcat.demo.run import run_soak

    s = run_soak(sessions, report_dir=ROOT / ".irtcat" / "soak-report")
    keys = ("sessions", "sessions_finished", "answers_unique", "answers_published", "answers_lost",
            "sustained_answers_per_second",
            "answers_double_applied", "garbage_sent", "rejected", "rejection_records", "duplicates_acknowledged",
            "reordered_sent", "faults_injected", "executions_failed", "dead_lettered", "latency_p50_ms",
            "latency_p99_ms", "answers_per_second", "seconds", "tablet_errors")
    return {f"soak_{k}": s[k] for k in keys}

def bench_door(repeat: int = 200) -> dict[str, Any]:
    """What the answer route's check adds (one session read; the bank version cached): the
    check against the local stack's DynamoDB, beside the Kinesis put the route always made,
    median of ``repeat`` calls each. On AWS both are single-digit-millisecond calls."""
    import uuid
    from datetime import UTC, datetime

    from irtcat.adapters.aws import DynamoSessions, DynamoStudents, KinesisAnswers, S3BankStore
    from irtcat.demo.run import settings_of
    from irtcat.domain.api import StartSessionRequest
    from irtcat.domain.events import AnswerEvent
    from irtcat.domain.generate import generate_bank
    from irtcat.domain.policy import TestDefinition
    from irtcat.domain.scoring import simulated_choice
    from irtcat.domain.steps import admit_answer, start_session
    from irtcat.emulator.runtime import LocalRuntime

    rt = LocalRuntime.up()
    try:
        settings = settings_of(rt)
        bank = generate_bank(200, seed=2, bank_id="door")
        banks = S3BankStore(settings)
        banks.publish(bank)
        banks.put_test(TestDefinition(test_id="door", bank_id="door"))
        sessions = DynamoSessions(settings, banks)
        view, _ = start_session(StartSessionRequest(student_id="d1", test_id="door"), sessions,
                                DynamoStudents(settings), banks)
        item = view.item
        assert item is not None
        shown = [(o.id, o.text) for o in item.options or []]
        event = AnswerEvent.model_validate({
            "schema_version": 2, "event_id": str(uuid.uuid4()), "session_id": view.session_id, "student_id": "d1",
            "item_id": item.item_id, "seq": item.seq,
            "choice": simulated_choice(bank.item(item.item_id), shown, True, np.random.default_rng(0)),
            "answered_at": datetime.now(UTC).isoformat()})
        # a stream of its own, so the Pipe does not apply the answers put here
        import boto3

        boto3.client("kinesis").create_stream(StreamName="door-bench", ShardCount=1)
        stream = KinesisAnswers("door-bench")
        check = median_us(lambda: admit_answer(event, sessions, banks), repeat=repeat, warmup=20)
        put = median_us(lambda: stream.publish(event), repeat=repeat, warmup=20)
    finally:
        rt.down()
    return {"door_check_ms": check / 1000, "door_put_ms": put / 1000, "door_check_over_put": check / put}

def bench_report(records: int = 1_000_000) -> dict[str, Any]:
    """``irtcat report`` on a synthetic history of ``records`` answer records (30 per session)."""
    import resource
    import shutil

    from irtcat.analytics.report import build_report

    root = ROOT / ".irtcat" / "bench-history"
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(0)
    per_day = records // 4
    for d in range(4):
        folder = root / "history" / f"dt=2026-01-0{d + 1}"
        folder.mkdir(parents=True)
        lines = []
        theta = rng.normal(size=per_day)
        item = rng.integers(0, 1000, per_day)
        resp = rng.integers(0, 2, per_day)
        for k in range(per_day):
            sid = f"{d}-{k // 30}"
            seq = k % 30 + 1
            lines.append(
                '{"schema_version":1,"record_type":"answer","outcome":"applied","processed_at":'
                f'"2026-01-0{d + 1}T09:{seq:02d}:00Z","event_id":"{sid}-{seq}","session_id":"{sid}",'
                f'"student_id":"st{k // 30 % 5000}","test_id":"t","bank_id":"b","bank_version":1,'
                f'"item_id":"i{item[k]}","seq":{seq},"response":{resp[k]},"scored":true,'
                f'"theta_after":{theta[k]:.4f},"se_after":0.3}}\n')
            if seq == 30:
                lines.append('{"schema_version":1,"record_type":"session","outcome":"finished",'
                             f'"processed_at":"2026-01-0{d + 1}T10:00:00Z","session_id":"{sid}",'
                             f'"student_id":"st{k // 30 % 5000}","test_id":"t","theta_after":{theta[k]:.4f},'
                             '"se_after":0.3,"items_answered":30,"stop_reason":"max_items"}\n')
        (folder / "part-00000.json").write_text("".join(lines))
    t = time.perf_counter()
    summary = build_report(root, ROOT / ".irtcat" / "bench-report-1m")
    return {"report_records": summary["history_records"], "report_seconds": time.perf_counter() - t,
            "report_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}

def bench_chaos(sessions: int = 60, runs: int = 3) -> dict[str, Any]:
    """The chaos run (``irtcat.demo.run.run_chaos``), ``runs`` times: pipeline containers killed
    at random, the soak's faults, resends and reorders, poison records of every kind. Each run
    must hold 0 lost, 0 double-applied, 0 missing history records, rejected == poison sent."""
    from irtcat.demo.run import run_chaos

    keys = ("sessions_finished", "answers_unique", "answers_applied", "answers_in_history", "answers_lost",
            "answers_double_applied", "history_duplicates", "garbage_sent", "rejected", "containers_killed",
            "executions_failed", "dead_lettered", "pipe_loop_errors", "stream_loop_errors", "drained", "drain_seconds",
            "restarts", "restart_seconds", "seconds",
            "tablet_errors", "history_missing")
    out: dict[str, Any] = {"chaos_sessions": sessions, "chaos_runs": runs}
    for k in range(runs):
        s = run_chaos(sessions, seed=5 + k, report_dir=ROOT / ".irtcat" / "chaos-report")
        out.update({f"chaos_{k + 1}_{key}": s[key] for key in keys})
        out[f"chaos_{k + 1}_history_missing_count"] = s["answers_applied"] - s["answers_in_history"]
        out[f"chaos_{k + 1}_history_missing_in_table_stream"] = s.get("history_missing_in_table_stream", [])
    return out

def bench_moto_patches(students: int, rounds: int = 2) -> dict[str, Any]:
    """What each speed patch of moto buys (irtcat.emulator.moto_patches): the demo's pipeline
    with all patches on, and with each speed patch off, alternated over ``rounds``; the figures
    are medians. Each run is a process of its own (a patch cannot be taken back)."""
    from irtcat.emulator.moto_patches import PATCHES

    speed = sorted(name for name, patch in PATCHES.items() if patch.kind == "speed")
    runs: dict[str, list[dict[str, float]]] = {}
    code = ("import json, sys; from irtcat.demo.run import run_demo; "
            f"s = run_demo(students={students}, report_dir=sys.argv[1], shards=2, batch_size=10); "
            "print(json.dumps({k: s[k] for k in ('answers_per_second', 'latency_p50_ms', 'latency_p99_ms', "
            "'answers_lost')}))")
    for _ in range(rounds):
        for off in ["", *speed]:
            env = {**os.environ, "IRTCAT_MOTO_PATCHES_OFF": off}
            run = subprocess.run([sys.executable, "-c", code, str(ROOT / ".irtcat" / "bench-report")], env=env,
                                 capture_output=True, text=True, cwd=ROOT, check=True)
            runs.setdefault(off or "all_on", []).append(json.loads(run.stdout.strip().splitlines()[-1]))
    out: dict[str, Any] = {"moto_patches_students": students, "moto_patches_rounds": rounds}
    base = statistics.median(r["answers_per_second"] for r in runs["all_on"])
    for name, results in runs.items():
        rate = statistics.median(r["answers_per_second"] for r in results)
        out[f"moto_patches_{name}_answers_per_second"] = rate
        out[f"moto_patches_{name}_latency_p50_ms"] = statistics.median(r["latency_p50_ms"] for r in results)
        out[f"moto_patches_{name}_lost"] = sum(r["answers_lost"] for r in results)
        if name != "all_on":
            out[f"moto_patches_{name}_off_throughput_ratio"] = rate / base
    return out


BENCHES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "pipeline": lambda a: bench_pipeline(a.students),
    # enough tablets to keep both shards busy: the pipeline's throughput, not the tablets' latency
    "pipeline_saturation": lambda a: bench_pipeline(2 * a.students, prefix="pipeline_saturation"),
    # the same load with two batches in flight per shard (PipeParallelization=2)
    "pipeline_saturation_parallel2": lambda a: bench_pipeline(2 * a.students, prefix="pipeline_saturation_p2",
                                                              parallelization=2),
    "door": lambda a: bench_door(),
    "report": lambda a: bench_report(),
    "soak": lambda a: bench_soak(a.soak_sessions),
    "moto_patches": lambda a: bench_moto_patches(a.students),
    "chaos": lambda a: bench_chaos(),
    "persistence": lambda a: bench_persistence(a.students),
    "batch": lambda a: bench_batch(),
    "capacity": lambda a: bench_capacity(a.students),
}
