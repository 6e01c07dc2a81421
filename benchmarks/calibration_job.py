"""The managed calibration job at scale (``./dev bench --only calibration_job``; run in its own
process so its peak memory is its own).

1. One run on ~1 million simulated history records (NDJSON, as Firehose lands them): the
   state machine's loop in one process over in-memory storage (``run_in_process``'s steps),
   timed per step, with the number of EM cycles and the peak RSS.
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
        _SHARDS[key] = load_shard(store, key)


def _e_step_worker(args: tuple[str, np.ndarray, np.ndarray, np.ndarray]) -> bytes:
    from irtcat.irt.calibration import EMPlan, ItemEstimates, e_step

    key, a, b, c = args
    nodes, log_w = EMPlan().quadrature()
    return e_step(_SHARDS[key], ItemEstimates(a, b, c), nodes, log_w).to_bytes()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(records: int = 1_000_000) -> dict[str, Any]:
    from irtcat.adapters.memory import MemoryBanks, MemoryObjects
    from irtcat.domain import calibration_job as job_steps
    from irtcat.domain.bank import ItemBank
    from irtcat.domain.calibration_job import CalibrationRequest, ShardTask
    from irtcat.domain.generate import generate_bank, simulated_history
    from irtcat.irt.calibration import ExpectedCounts

    out: dict[str, Any] = {}
    test_length, pretest = 20, 20
    truth = generate_bank(400, "2PL", seed=21, bank_id="bench", pretest=pretest, with_content=False)
    provisional = truth.model_copy(update={"items": [
        it.model_copy(update={"a": 1.0, "b": 0.0}) if it.status == "pretest" else it for it in truth.items]})
    t = time.perf_counter()
    objects = simulated_history(truth, records // (test_length + 4), max_items=test_length,
                                pretest_positions=(3, 7, 11, 15), seed=22, days=7)
    out["calibjob_generate_s"] = time.perf_counter() - t
    history, banks = MemoryObjects(), MemoryBanks()
    for key, data in objects.items():
        history.put(key, data)
    del objects
    banks.publish(provisional)
    out["calibjob_history_mb"] = sum(len(history.get(k)) for k in history.list("")) / 2**20
    rss_before = peak_rss_mb()

    work = MemoryObjects()
    request = CalibrationRequest(bank_id="bench", shards=8)
    t = time.perf_counter()
    job = job_steps.prepare(request, banks, history, work, run_id="bench")
    out["calibjob_prepare_s"] = time.perf_counter() - t
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
    out["calibjob_peak_rss_before_run_mb"] = rss_before
    out["calibjob_gates_passed"] = job.gates_passed
    out["calibjob_promoted"] = len(job.promoted)
    new = {it.item_id: it for it in ItemBank.model_validate_json(work.get(f"{job.prefix}bank.json")).items}
    pre = [it for it in truth.items if it.status == "pretest"]
    out["calibjob_pretest_rmse_b"] = float(np.sqrt(np.mean([(new[it.item_id].b - it.b) ** 2 for it in pre])))

    # the sharded E-step: n shards, each in its own worker process
    final = json.loads(work.get(job.params_key(job.iteration)))
    a, b, c = (np.array(final[k]) for k in "abc")
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


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(json.dumps(main(n)))
