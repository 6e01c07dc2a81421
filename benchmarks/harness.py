"""What every benchmark module shares: the project root, a timing helper, and the provenance a
result carries (date, commit, machine, command)."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def median_us(fn: Callable[[], Any], repeat: int = 2000, warmup: int = 200) -> float:
    """The median time of one call of ``fn``, in microseconds."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t)
    return statistics.median(samples) / 1000.0


def machine() -> str:
    """CPU model, cores, Python and numpy versions."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"


def commit() -> str:
    """The checkout's commit (short), with "+changes" when the code differs from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    # what benchmarks write (the results, the capacity profile) changes with a run: not a change
    # to the code measured
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results.json",
                  ":!shared/irtcat/capacity/profile.json")
    return head + ("+changes" if changed else "")


def provenance(command: str) -> dict[str, str]:
    """Where a result comes from: date, commit, machine and the command that produced it."""
    return {"date": time.strftime("%Y-%m-%d"), "commit": commit(), "machine": machine(), "command": command}
