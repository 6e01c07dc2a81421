"""A calibration run on the local stack: the template's calibration state machine (Distributed
Map of E-steps included) started through the Step Functions API, as the schedule starts it."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3

from ..adapters.aws import S3BankStore, S3Objects
from ..domain.calibration_job import CalibrationRequest, report_key
from ..domain.ports import NotFound
from ..emulator.template import REGION


def run_calibration(outputs: dict[str, Any], bank_bucket: str, request: CalibrationRequest,
                    run_id: str | None = None, timeout: float = 1800.0) -> dict[str, Any]:
    """Start the calibration state machine, wait for it, and summarise the run: status,
    cycles, the pretest items' estimates and decisions (from the run's report in S3), and the
    bank's current version before and after."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    banks = S3BankStore.for_bucket(bank_bucket, ttl=0.0)
    work = S3Objects(bank_bucket)
    run_id = run_id or f"local-{uuid.uuid4().hex[:8]}"
    before = _current_version(banks, request.bank_id)
    started = time.perf_counter()
    arn = sfn.start_execution(stateMachineArn=str(outputs["CalibrationStateMachineArn"]), name=run_id,
                              input=request.model_dump_json(exclude_none=True))["executionArn"]
    deadline = time.monotonic() + timeout
    while True:
        desc = sfn.describe_execution(executionArn=arn)
        if desc["status"] != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    summary: dict[str, Any] = {"run_id": run_id, "status": desc["status"], "seconds": seconds,
                               "version_before": before, "version_after": _current_version(banks, request.bank_id)}
    if desc["status"] != "SUCCEEDED":
        summary.update(error=desc.get("error"), cause=desc.get("cause"))
    job = json.loads(desc.get("output") or "{}")
    summary.update({k: job.get(k) for k in ("phase", "iteration", "converged", "n_responses", "n_sessions",
                                            "n_shards", "gates_passed", "gate_failures", "promoted")})
    try:
        report = json.loads(work.get(report_key(request.bank_id, run_id)))
    except KeyError:  # nothing to calibrate, or the run failed before Finalize
        summary["items"] = []
    else:
        summary["items"] = report["items"]
        summary["gate_failures"] = report["summary"]["gate_failures"]
        summary["iteration"] = report["summary"]["iterations"]
    return summary


def _current_version(banks: S3BankStore, bank_id: str) -> int | None:
    try:
        return banks.current_version(bank_id)
    except NotFound:
        return None


def format_summary(s: dict[str, Any]) -> str:
    """The run in a few lines and a table of the pretest items."""
    lines = [f"calibration {s['run_id']}: {s['status']} in {s['seconds']:.1f} s"]
    if s.get("phase") == "nothing":
        lines.append("nothing to calibrate: no pretest item has new responses since the last calibration")
        return "\n".join(lines)
    lines.append(f"  {s.get('n_responses')} responses of {s.get('n_sessions')} sessions in {s.get('n_shards')} shards; "
                 f"{s.get('iteration')} EM cycles ({'converged' if s.get('converged') else 'NOT converged'})")
    if s.get("gate_failures"):
        lines.append("  quality gates failed: " + "; ".join(s["gate_failures"]) + " (bank untouched)")
    lines.append(f"  bank version {s.get('version_before')} -> {s.get('version_after')}; "
                 f"promoted: {', '.join(s.get('promoted') or []) or 'none'}")
    if s.get("items"):
        lines.append(f"  {'item':12s} {'model':5s} {'n':>6s} {'a':>7s} {'b (thresholds)':>20s} "
                     f"{'SE(b)':>15s} {'RMSD':>6s}  decision")
        for row in s["items"]:
            n = _number(row.get("n_responses"), "d")
            lines.append(f"  {row['item_id']:12s} {row.get('model') or '':5s} {n:>6s} {_number(row.get('a')):>7s} "
                         f"{_number(row.get('b')):>20s} {_number(row.get('se_b')):>15s} "
                         f"{_number(row.get('rmsd')):>6s}  {row.get('calibration_note') or row.get('status') or ''}")
    return "\n".join(lines)


def _number(value: Any, spec: str = ".3f") -> str:
    """A report value for the table: a number, a partial-credit item's list (its thresholds or
    their SEs) joined by '/', or '-' when absent."""
    if value is None:
        return "-"
    if isinstance(value, list):
        return "/".join(format(x, ".2f") for x in value)
    return format(value, spec)
