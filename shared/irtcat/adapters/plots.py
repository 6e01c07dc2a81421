"""PNG plots of a simulation: theta trajectories, item exposure, conditional RMSE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..irt.simulation import SimulationResult


def simulation_plots(result: SimulationResult, summary: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write trajectories.png, exposure.png and conditional_rmse.png; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []

    fig, ax = plt.subplots(figsize=(8, 5))
    show = np.linspace(0, result.theta.size - 1, min(20, result.theta.size)).astype(int)
    for k in show:
        traj = result.trajectories[k]
        steps = np.flatnonzero(~np.isnan(traj))
        line = ax.plot(steps, traj[steps], lw=1)[0]
        ax.axhline(result.true_theta[k], color=line.get_color(), ls=":", lw=0.8)
    ax.set(xlabel="items answered", ylabel="theta estimate", title="Theta trajectories (dotted: true theta)")
    paths.append(out / "trajectories.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.hist(result.exposure, bins=40)
    ax.set(xlabel="exposure rate", ylabel="items", title=f"Item exposure (max {summary['max_exposure']:.2f})")
    paths.append(out / "exposure.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    cond = [c for c in summary["conditional_rmse"] if c["rmse"] is not None]
    mids = [(c["theta_low"] + c["theta_high"]) / 2 for c in cond]
    ax.plot(mids, [c["rmse"] for c in cond], marker="o")
    ax.set(xlabel="true theta (decile midpoint)", ylabel="RMSE", title="Conditional RMSE by theta decile")
    paths.append(out / "conditional_rmse.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)
    return paths
