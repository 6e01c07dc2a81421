"""Item fit: Orlando & Thissen's S-X2 on summed scores, and RMSD on the posterior.

S-X2 (Orlando & Thissen 2000, *Applied Psychological Measurement* 24, 50-64; for partial-credit
items Kang & Chen 2008, *JEM* 45, 391-406) compares, within each summed-score group k, the
observed share of examinees in each category c of item i with the share the model implies:

    E_ikc = sum_q w_q P_ic(theta_q) P(S_-i = k - c | theta_q) / sum_q w_q P(S = k | theta_q)

where S_-i is the summed score on the other items; both summed-score distributions come from
the Lord & Wingersky (1984) recursion. With N_k examinees at score k and O_ikc the observed
share,

    S-X2_i = sum_k sum_c N_k (O_ikc - E_ikc)^2 / E_ikc,   df = G_i (C_i - 1) - m_i

over the G_i score groups left after collapsing (scores 0 and the maximum say nothing about an
item and are left out), C_i categories and m_i estimated parameters. For a right/wrong item the
inner sum is N_k (O - E)^2 / (E (1 - E)), the paper's form.

Collapsing (as mirt's ``mincell``): a score group whose smallest expected cell count N_k E_ikc
is under ``mincell`` is merged with its neighbour toward the middle of the score range,
scanning from both ends, until every group holds at least ``mincell`` in every cell.

S-X2 needs every examinee to have answered the same items (a summed score means the same
thing only then). Adaptive data do not: there only RMSD is reported,

    RMSD_i = sqrt( sum_q f_iq sum_c (o_iqc - P_ic(theta_q))^2 / C_i )

with o_iqc the posterior-expected share in category c at node q and f_iq the item's share of
posterior mass at q (the statistic the calibration reports; for a right/wrong item it is
sqrt(sum_q f_iq (o_iq - P_i(theta_q))^2)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import FloatArray
from .common import MISSING, Adjust, ItemCurves, adjust_p, posterior_weights

ADAPTIVE_NOTE = ("the responses are incomplete (adaptive or linked forms): summed scores are not comparable "
                 "across examinees, so S-X2 is not computed; RMSD is reported")


def summed_score_distribution(probs: tuple[FloatArray, ...] | list[FloatArray]) -> FloatArray:
    """P(S = s | theta_q) for s = 0..max by the Lord & Wingersky (1984) recursion; ``probs[i]``
    (nodes, categories_i). Returns (nodes, max + 1)."""
    nodes = probs[0].shape[0] if probs else 1
    dist = np.ones((nodes, 1))
    for p in probs:
        new = np.zeros((nodes, dist.shape[1] + p.shape[1] - 1))
        for c in range(p.shape[1]):
            new[:, c:c + dist.shape[1]] += dist * p[:, c:c + 1]
        dist = new
    return dist


@dataclass(frozen=True)
class ItemFit:
    """One item's fit: S-X2 with df and p (NaN when not computable), RMSD, the adjusted p,
    whether it is flagged, and the score groups used."""

    s_x2: float
    df: int
    p: float
    rmsd: float
    p_adjusted: float = float("nan")
    flagged: bool = False
    groups: int = 0


def s_x2(responses: np.ndarray, curves: ItemCurves, weights: FloatArray, mincell: float = 1.0
         ) -> list[tuple[float, int, float, int]]:
    """(S-X2, df, p, score groups) per item on complete ``responses`` (persons, items) scored
    0..C_i - 1; module docstring for the formula and the collapsing rule."""
    from scipy.stats import chi2

    if (responses == MISSING).any():
        raise ValueError(ADAPTIVE_NOTE)
    total = responses.sum(axis=1)
    full = summed_score_distribution(curves.probs)  # (nodes, S + 1)
    top = full.shape[1] - 1
    marginal = weights @ full  # P(S = k)
    out = []
    for i, p_i in enumerate(curves.probs):
        cats = p_i.shape[1]
        rest = summed_score_distribution([p for j, p in enumerate(curves.probs) if j != i])
        scores = np.arange(1, top)
        expected = np.zeros((scores.size, cats))
        for c in range(cats):
            shifted = scores - c
            ok = (shifted >= 0) & (shifted < rest.shape[1])
            joint = np.zeros((full.shape[0], scores.size))
            joint[:, ok] = p_i[:, c:c + 1] * rest[:, shifted[ok]]
            expected[:, c] = (weights @ joint) / np.maximum(marginal[scores], 1e-300)
        n_k = np.array([(total == k).sum() for k in scores], float)
        observed = np.array([[((total == k) & (responses[:, i] == c)).sum() for c in range(cats)] for k in scores],
                            float)
        exp_counts = expected * n_k[:, None]
        groups_o, groups_e = _collapse(observed, exp_counts, mincell)
        keep = groups_e > 0
        stat = float(np.sum((groups_o[keep] - groups_e[keep]) ** 2 / groups_e[keep]))
        df = int(groups_o.shape[0] * (cats - 1) - curves.n_params[i])
        p = float(chi2.sf(stat, df)) if df > 0 else float("nan")
        out.append((stat, df, p, int(groups_o.shape[0])))
    return out


def _collapse(observed: FloatArray, expected: FloatArray, mincell: float) -> tuple[FloatArray, FloatArray]:
    """Merge score groups (rows) from both ends toward the middle until every expected cell
    count is at least ``mincell`` (a single group left stands as it is)."""
    obs, exp = [*observed], [*expected]
    lo = 0
    while lo < len(exp) - 1 and exp[lo].min() < mincell:
        obs[lo + 1] = obs[lo + 1] + obs[lo]
        exp[lo + 1] = exp[lo + 1] + exp[lo]
        del obs[lo], exp[lo]
    hi = len(exp) - 1
    while hi > 0 and exp[hi].min() < mincell:
        obs[hi - 1] = obs[hi - 1] + obs[hi]
        exp[hi - 1] = exp[hi - 1] + exp[hi]
        del obs[hi], exp[hi]
        hi -= 1
    return np.array(obs), np.array(exp)


def observed_curves(responses: np.ndarray, curves: ItemCurves, weights: FloatArray
                    ) -> list[tuple[FloatArray, FloatArray] | None]:
    """Per item: the posterior-expected share in each category per node (nodes, C) and the
    item's share of posterior mass per node (None for an item nobody answered)."""
    post = posterior_weights(responses, curves, weights)  # (persons, nodes)
    out: list[tuple[FloatArray, FloatArray] | None] = []
    for i, p_i in enumerate(curves.probs):
        x = responses[:, i]
        seen = x != MISSING
        if not seen.any():
            out.append(None)
            continue
        counts = np.stack([post[seen & (x == c)].sum(axis=0) for c in range(p_i.shape[1])], axis=1)  # (nodes, C)
        n_q = counts.sum(axis=1)
        obs = np.where(n_q[:, None] > 1e-12, counts / np.maximum(n_q[:, None], 1e-12), p_i)
        out.append((obs, n_q / n_q.sum()))
    return out


def rmsd(responses: np.ndarray, curves: ItemCurves, weights: FloatArray) -> FloatArray:
    """RMSD per item on any responses, complete or adaptive (module docstring)."""
    out = np.full(len(curves.probs), np.nan)
    for i, (p_i, seen) in enumerate(zip(curves.probs, observed_curves(responses, curves, weights), strict=True)):
        if seen is not None:
            obs, f = seen
            out[i] = float(np.sqrt(np.sum(f * np.sum((obs - p_i) ** 2, axis=1)) / p_i.shape[1]))
    return out


def item_fit(responses: np.ndarray, curves: ItemCurves, weights: FloatArray, mincell: float = 1.0,
             adjust: Adjust = "bh", alpha: float = 0.05) -> tuple[list[ItemFit], str | None]:
    """S-X2 and RMSD per item, flagged where the adjusted p is below ``alpha``; on incomplete
    (adaptive) data RMSD only, with the note that says why (second value)."""
    misfit = rmsd(responses, curves, weights)
    if (responses == MISSING).any():
        return [ItemFit(float("nan"), 0, float("nan"), float(r)) for r in misfit], ADAPTIVE_NOTE
    stats = s_x2(responses, curves, weights, mincell)
    p_adj = adjust_p(np.array([s[2] for s in stats]), adjust)
    return [ItemFit(s, df, p, float(r), float(pa), bool(pa < alpha), g)
            for (s, df, p, g), r, pa in zip(stats, misfit, p_adj, strict=True)], None
