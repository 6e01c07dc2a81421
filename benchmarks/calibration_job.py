"""The managed calibration job at scale (``./dev bench --only calibration_job``; run in its own
process so its peak memory is its own).

1. One run on ~1 million simulated history records (NDJSON files, as Firehose lands them):
   the state machine's steps in one fresh process (history read object by object, working
   storage in memory), timed per step, with the number of EM cycles and the peak RSS.
2. The sharded E-step with 1, 2, 4 and 8 shards, each shard in its own worker process (as each
   Distributed Map item runs in its own Lambda): seconds per E-step pass on this machine.

Prints one JSON object.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

_SHARDS: dict[str, Any] = {}


def _init_worker(shards: dict[str, bytes]) -> None:
    from irtcat.adapters.memory import MemoryObjects
    from irtcat.domain.calibration_job import load_shard

    store = MemoryObjects()
    for key, data in shards.items():
        store.put(key, data)
        _SHARDS[key] = load_shard(store, key)[0]  # the right/wrong answers (the bank has no others)


def _e_step_worker(args: tuple[str, np.ndarray, np.ndarray, np.ndarray]) -> bytes:
    from irtcat.irt.calibration import EMSettings, ItemEstimates, e_step

    key, a, b, c = args
    nodes, log_w = EMSettings().quadrature()
    return e_step(_SHARDS[key], ItemEstimates(a, b, c), nodes, log_w).to_bytes()


def peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM (ru_maxrss survives fork + exec on Linux, so a child
    started by a big parent would report the parent's size)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(records: int, folder: str) -> dict[str, Any]:
    """~``records`` history records as NDJSON files under ``folder/history/`` and the
    provisional bank under ``folder/bank.json``."""
    from irtcat.adapters.files import DirObjects
    from irtcat.domain.generate import generate_bank, provisional_bank, simulated_history

    truth = generate_bank(400, "2PL", seed=21, bank_id="bench", pretest=20, with_content=False)
    t = time.perf_counter()
    objects = simulated_history(truth, records // 24, max_items=20, pretest_positions=(3, 7, 11, 15),
                                seed=22, days=7)
    store = DirObjects(folder)
    for key, data in objects.items():
        store.put(key, data)
    store.put("bank.json", provisional_bank(truth).model_dump_json().encode())
    store.put("truth.json", truth.model_dump_json().encode())
    return {"calibjob_generate_s": time.perf_counter() - t,
            "calibjob_history_mb": sum(len(d) for d in objects.values()) / 2**20}


def run(folder: str) -> dict[str, Any]:
    """The job's steps over the folder's history, as the state machine runs them (E-steps of
    the 8 shards one after another here); then the sharded E-step in worker processes."""
    from irtcat.adapters.files import DirObjects
    from irtcat.adapters.memory import MemoryBanks, MemoryObjects
    from irtcat.domain import calibration_job as job_steps
    from irtcat.domain.bank import ItemBank
    from irtcat.domain.calibration_job import CalibrationRequest, ShardTask
    from irtcat.irt.calibration import ExpectedCounts

    out: dict[str, Any] = {}
    history = DirObjects(folder)
    banks = MemoryBanks()
    banks.publish(ItemBank.model_validate_json(history.get("bank.json")))
    truth = ItemBank.model_validate_json(history.get("truth.json"))
    rss_start = peak_rss_mb()
    work = MemoryObjects()
    request = CalibrationRequest(bank_id="bench", shards=8)
    t = time.perf_counter()
    job = job_steps.prepare(request, banks, history, work, run_id="bench")
    out["calibjob_prepare_s"] = time.perf_counter() - t
    out["calibjob_peak_rss_after_prepare_mb"] = peak_rss_mb()
    out["calibjob_responses"] = job.n_responses
    out["calibjob_sessions"] = job.n_sessions
    cycle_s: list[float] = []
    cache: dict[str, Any] = {}
    t_run = time.perf_counter()
    while job.phase != "done":
        t = time.perf_counter()
        for key in work.list(job.shard_prefix):
            job_steps.e_step(ShardTask(job=job, key=key), work, cache)
        job = job_steps.m_step(job, work)
        cycle_s.append(time.perf_counter() - t)
    t = time.perf_counter()
    job = job_steps.finalize(job, banks, work)
    out["calibjob_finalize_s"] = time.perf_counter() - t
    out["calibjob_em_cycles"] = job.iteration
    out["calibjob_converged"] = job.converged
    out["calibjob_cycle_s_median"] = statistics.median(cycle_s)
    out["calibjob_total_s"] = out["calibjob_prepare_s"] + (time.perf_counter() - t_run)
    out["calibjob_peak_rss_mb"] = peak_rss_mb()
    out["calibjob_rss_at_start_mb"] = rss_start
    out["calibjob_gates_passed"] = job.gates_passed
    out["calibjob_promoted"] = len(job.promoted)
    new = {it.item_id: it for it in ItemBank.model_validate_json(work.get(f"{job.prefix}bank.json")).items}
    pre = [it for it in truth.items if it.status == "pretest"]
    out["calibjob_pretest_rmse_b"] = float(np.sqrt(np.mean([(new[it.item_id].b - it.b) ** 2 for it in pre])))

    # the sharded E-step: n shards, each in its own worker process
    final = np.array(json.loads(work.get(job.params_key(job.iteration)))["em"]["x"])  # the EM driver's last point
    a, b, c = np.split(final, 3)
    for n in (1, 2, 4, 8):
        shard_work = MemoryObjects()
        sharded = job_steps.prepare(request.model_copy(update={"shards": n}), banks, history, shard_work,
                                    run_id=f"s{n}")
        keys = shard_work.list(sharded.shard_prefix)
        with ProcessPoolExecutor(max_workers=n, initializer=_init_worker,
                                 initargs=({k: shard_work.get(k) for k in keys},)) as pool:
            tasks = [(k, a, b, c) for k in keys]
            list(pool.map(_e_step_worker, tasks))  # warm: every worker has loaded its shards
            times = []
            for _ in range(3):
                t = time.perf_counter()
                total = ExpectedCounts.zeros(a.size, 41)
                for raw in pool.map(_e_step_worker, tasks):
                    total = total + ExpectedCounts.from_bytes(raw)
                times.append(time.perf_counter() - t)
        out[f"calibjob_estep_{n}_shards_s"] = statistics.median(times)
    return out


def main(records: int = 1_000_000) -> dict[str, Any]:
    """Generate in one process, run in a fresh one (its peak RSS is the job's alone)."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        out = generate(records, folder)
        run_out = subprocess.run([sys.executable, __file__, "--run", folder], capture_output=True, text=True,
                                 check=True)
        out.update(json.loads(run_out.stdout.strip().splitlines()[-1]))
    return out


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--run":
        print(json.dumps(run(sys.argv[2])))
    else:
        print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)))
