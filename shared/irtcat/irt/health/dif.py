"""Differential item functioning: Mantel-Haenszel with ETS's A/B/C classes, and an IRT
likelihood-ratio test for uniform and non-uniform DIF.

**Mantel-Haenszel** (Holland & Thayer 1988). Examinees are matched into strata k; in each, the
2x2 table of reference right/wrong (A_k, B_k) and focal right/wrong (C_k, D_k), T_k in all:

    alpha_MH = sum_k A_k D_k / T_k  /  sum_k B_k C_k / T_k,      MH D-DIF = -2.35 ln alpha_MH

(negative: the item is harder for the focal group than for reference examinees of the same
standing), the continuity-corrected chi-square

    MH chi2 = (|sum_k A_k - sum_k E(A_k)| - 1/2)^2 / sum_k Var(A_k),
    E(A_k) = n_Rk m_1k / T_k,   Var(A_k) = n_Rk n_Fk m_1k m_0k / (T_k^2 (T_k - 1)),

and the Robins, Breslow & Greenland (1986) variance of ln alpha_MH for the SE of the delta.
ETS classes (Zieky 1993): **C** when |delta| >= 1.5 and |delta| is significantly above 1
(one-sided .05: |delta| - 1 > 1.645 SE); **A** when |delta| < 1 or the chi-square is not
significant at .05; **B** otherwise.

Matching: on complete data the summed score, purified (Holland & Thayer 1988): a first pass
flags items of class B or C, and the second matches on the score over the other items (plus
the studied item). On adaptive data, where summed scores are not comparable, examinees are
matched on their ability estimate (EAP from the bank's parameters, leaving the studied item
out) in ``strata`` equal-count strata, as CATSIB does (Nandakumar & Roussos 2004).

**Partial-credit items**: Mantel's (1963) test for ordered categories with the standardized mean
difference (Dorans & Schmitt 1991). In stratum k, with scores y, F_k the focal examinees' score
sum, n_Fk, n_Rk, n_k the group and stratum sizes and S1_k, S2_k the sums of y and y^2 over all:

    E(F_k) = n_Fk S1_k / n_k,   Var(F_k) = n_Rk n_Fk (n_k S2_k - S1_k^2) / (n_k^2 (n_k - 1)),
    Mantel chi2 = (sum_k F_k - sum_k E(F_k))^2 / sum_k Var(F_k)      (df 1),
    SMD = sum_k (n_Fk / n_F) (mean_Fk - mean_Rk)                       (negative: harder for focal),

and ETS's classes for polytomous items (Zwick, Thayer & Mazzeo 1997) on the effect size
SMD / SD(item score): **C** when the test is significant at .05 and |ES| > .25, **B** when
significant and |ES| > .17, **A** otherwise.

**Likelihood ratio** (Thissen, Steinberg & Wainer 1988, 1993), with the bank's parameters for
the anchor items held fixed: each group's latent mean and SD are estimated by marginal maximum
likelihood from the anchor items (the reference group's fix the scale), then for the studied
item three models are fitted by maximum marginal likelihood with everything else fixed: one set
of parameters for both groups, group-specific b (uniform DIF), group-specific a and b
(non-uniform DIF). G2 = 2 (LL_free - LL_common) with df the added parameters; ``lr_uniform``
and ``lr_nonuniform`` split it into the b step and the a step (df 1 each).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.stats import chi2, norm

from ..model import FloatArray
from .common import MISSING, Adjust, adjust_p

DELTA = -2.35


@dataclass(frozen=True)
class MantelHaenszel:
    """One item's MH statistics and ETS class."""

    delta: float
    se_delta: float
    chi2: float
    p: float
    ets_class: str


def mantel_haenszel(right: np.ndarray, focal: np.ndarray, stratum: np.ndarray) -> MantelHaenszel:
    """MH for one item over the examinees who answered it: ``right`` 0/1, ``focal`` bool,
    ``stratum`` the matching stratum of each (module docstring)."""
    r_sum = s_sum = sum_a = sum_e = sum_v = 0.0
    pr = psqr = qs = 0.0
    for k in np.unique(stratum):
        m = stratum == k
        ref, foc = m & ~focal, m & focal
        a_k, b_k = float(right[ref].sum()), float((1 - right[ref]).sum())
        c_k, d_k = float(right[foc].sum()), float((1 - right[foc]).sum())
        t_k = a_k + b_k + c_k + d_k
        if t_k < 2 or a_k + b_k == 0 or c_k + d_k == 0:
            continue  # a stratum without both groups says nothing
        r_k, s_k = a_k * d_k / t_k, b_k * c_k / t_k
        p_k, q_k = (a_k + d_k) / t_k, (b_k + c_k) / t_k
        r_sum += r_k
        s_sum += s_k
        pr += p_k * r_k
        psqr += p_k * s_k + q_k * r_k
        qs += q_k * s_k
        n_r, n_f, m1, m0 = a_k + b_k, c_k + d_k, a_k + c_k, b_k + d_k
        sum_a += a_k
        sum_e += n_r * m1 / t_k
        sum_v += n_r * n_f * m1 * m0 / (t_k**2 * (t_k - 1))
    if r_sum <= 0 or s_sum <= 0 or sum_v <= 0:
        return MantelHaenszel(float("nan"), float("nan"), float("nan"), float("nan"), "")
    alpha = r_sum / s_sum
    var_log = pr / (2 * r_sum**2) + psqr / (2 * r_sum * s_sum) + qs / (2 * s_sum**2)
    delta = DELTA * float(np.log(alpha))
    se = abs(DELTA) * float(np.sqrt(var_log))
    stat = (abs(sum_a - sum_e) - 0.5) ** 2 / sum_v
    p = float(chi2.sf(stat, 1))
    return MantelHaenszel(delta, se, stat, p, ets_class(delta, se, p))


def ets_class(delta: float, se: float, p: float) -> str:
    """ETS's A/B/C (module docstring)."""
    if abs(delta) < 1.0 or p >= 0.05:
        return "A"
    if abs(delta) >= 1.5 and abs(delta) - 1.0 > norm.ppf(0.95) * se:
        return "C"
    return "B"


def score_strata(responses: np.ndarray, matching: np.ndarray, item: int) -> np.ndarray:
    """The summed score over ``matching`` items plus the studied ``item`` (Holland & Thayer's
    matching variable) per examinee."""
    cols = np.union1d(np.flatnonzero(matching), [item])
    out: np.ndarray = responses[:, cols].sum(axis=1)
    return out


def ability_strata(theta: FloatArray, strata: int) -> np.ndarray:
    """Equal-count strata of ability estimates (CATSIB-style matching on adaptive data)."""
    edges = np.quantile(theta, np.linspace(0, 1, strata + 1)[1:-1])
    out: np.ndarray = np.searchsorted(edges, theta, side="right")
    return out


@dataclass(frozen=True)
class DifResult:
    """One item's DIF statistics (``lr_*`` NaN when the LR test was not run)."""

    mh: MantelHaenszel
    lr_chi2: float = float("nan")
    lr_df: int = 0
    lr_p: float = float("nan")
    lr_uniform_p: float = float("nan")
    lr_nonuniform_p: float = float("nan")
    lr_p_adjusted: float = float("nan")
    flagged: bool = False


def _rw_prob(theta: FloatArray, a: FloatArray | float, b: FloatArray | float, c: FloatArray | float) -> FloatArray:
    out: FloatArray = c + (1 - c) / (1 + np.exp(-a * (theta - b)))
    return np.clip(out, 1e-12, 1 - 1e-12)


def _item_log_lik(x: np.ndarray, p: FloatArray) -> FloatArray:
    """(persons, nodes) log P(x | theta_q) of one item's responses (0 where not answered)."""
    out: FloatArray = np.where((x == 1)[:, None], np.log(p)[None, :], np.log1p(-p)[None, :])
    out[x == MISSING] = 0.0
    return out


class FixedAnchors:
    """Right/wrong responses of two groups with the anchor items' parameters held fixed (a, b, c
    on the D = 1 logistic metric): each group's latent normal, and the marginal likelihood of a
    studied item's parameters with everything else fixed (module docstring, likelihood ratio)."""

    def __init__(self, responses: np.ndarray, focal: np.ndarray, a: FloatArray, b: FloatArray, c: FloatArray,
                 anchors: np.ndarray, nodes: int = 81):
        self.x, self.focal, self.a, self.b, self.c = responses, focal, a, b, c
        self.theta = np.linspace(-6.0, 6.0, nodes)
        p = _rw_prob(self.theta[:, None], a[None, :], b[None, :], c[None, :])  # (nodes, items)
        self.item_ll = {int(j): _item_log_lik(responses[:, j], p[:, j]) for j in np.flatnonzero(anchors)}
        self.anchor_ll = np.sum(list(self.item_ll.values()), axis=0)
        self.groups = self._latent()

    def _prior(self, mean: float, sd: float) -> FloatArray:
        w = np.exp(-0.5 * ((self.theta - mean) / sd) ** 2)
        out: FloatArray = np.log(w / w.sum())
        return out

    def _latent(self, cycles: int = 200, tol: float = 1e-6) -> dict[bool, tuple[float, float]]:
        """(mean, sd) per group by EM on the anchors: the posterior's mean and variance,
        averaged over the group's examinees, until they stop changing."""
        out = {}
        for group in (False, True):
            ll = self.anchor_ll[self.focal == group]
            mean, sd = 0.0, 1.0
            for _ in range(cycles):
                post = ll + self._prior(mean, sd)[None, :]
                post = np.exp(post - post.max(axis=1, keepdims=True))
                post /= post.sum(axis=1, keepdims=True)
                m1 = post @ self.theta
                m2 = post @ self.theta**2
                new_mean = float(m1.mean())
                new_sd = float(np.sqrt(max(m2.mean() - new_mean**2, 1e-6)))
                done = abs(new_mean - mean) < tol and abs(new_sd - sd) < tol
                mean, sd = new_mean, new_sd
                if done:
                    break
            out[group] = (mean, sd)
        return out

    def likelihood_ratio(self, item: int) -> tuple[float, float, float]:
        """G2 for the studied ``item`` against one set of parameters for both groups: (all:
        group-specific a and b, df 2; uniform: b alone, df 1; non-uniform: then a, df 1)."""
        x = self.x[:, item]
        seen = x != MISSING
        own = self.item_ll.get(item)
        rest = self.anchor_ll if own is None else self.anchor_ll - own
        prior = np.where(self.focal[:, None], self._prior(*self.groups[True])[None, :],
                         self._prior(*self.groups[False])[None, :])
        m = (rest + prior)[seen]
        m = np.exp(m - m.max(axis=1, keepdims=True))
        y, foc, c = x[seen], self.focal[seen], float(self.c[item])

        def negll(v: np.ndarray, kind: str) -> float:
            if kind == "common":
                a, b = np.exp(v[0]), v[1]
            elif kind == "uniform":
                a, b = np.exp(v[0]), np.where(foc, v[2], v[1])
            else:
                a, b = np.exp(np.where(foc, v[2], v[0])), np.where(foc, v[3], v[1])
            p = _rw_prob(self.theta[None, :], np.asarray(a)[..., None] if np.ndim(a) else a,
                         np.asarray(b)[..., None] if np.ndim(b) else b, c)
            like = np.where((y == 1)[:, None], p, 1 - p)
            return -float(np.sum(np.log(np.maximum(np.sum(m * like, axis=1), 1e-300))))

        start = np.array([np.log(max(float(self.a[item]), 0.05)), float(self.b[item])])
        fits = {}
        for kind, v0 in (("common", start), ("uniform", np.r_[start, start[1]]),
                         ("nonuniform", np.r_[start, start])):
            res = minimize(negll, v0, args=(kind,), method="L-BFGS-B")
            fits[kind] = -float(res.fun)
        fits["uniform"] = max(fits["uniform"], fits["common"])
        fits["nonuniform"] = max(fits["nonuniform"], fits["uniform"])
        return (2 * (fits["nonuniform"] - fits["common"]), 2 * (fits["uniform"] - fits["common"]),
                2 * (fits["nonuniform"] - fits["uniform"]))


@dataclass(frozen=True)
class MantelOrdinal:
    """One partial-credit item's Mantel test, SMD, effect size and ETS class."""

    smd: float
    effect_size: float
    chi2: float
    p: float
    ets_class: str


def mantel_ordinal(score: np.ndarray, focal: np.ndarray, stratum: np.ndarray) -> MantelOrdinal:
    """Mantel's test and the SMD of one partial-credit item (module docstring)."""
    score = np.asarray(score, float)
    n_focal = int(focal.sum())
    f_sum = e_sum = var = smd = 0.0
    for k in np.unique(stratum):
        here = stratum == k
        y, f = score[here], focal[here]
        n, nf = y.size, int(f.sum())
        nr = n - nf
        if nf == 0 or nr == 0:
            continue
        s1, s2 = float(y.sum()), float((y**2).sum())
        f_sum += float(y[f].sum())
        e_sum += nf * s1 / n
        if n > 1:
            var += nr * nf * (n * s2 - s1**2) / (n**2 * (n - 1))
        smd += nf / max(n_focal, 1) * (float(y[f].mean()) - float(y[~f].mean()))
    sd = float(score.std(ddof=1)) if score.size > 1 else 0.0
    if var <= 0 or sd <= 0:
        return MantelOrdinal(float("nan"), float("nan"), float("nan"), float("nan"), "")
    stat = (f_sum - e_sum) ** 2 / var
    p = float(chi2.sf(stat, 1))
    es = smd / sd
    ets = "C" if p < 0.05 and abs(es) > 0.25 else "B" if p < 0.05 and abs(es) > 0.17 else "A"
    return MantelOrdinal(smd, es, stat, p, ets)


def dif(responses: np.ndarray, focal: np.ndarray, a: FloatArray, b: FloatArray, c: FloatArray,
        theta: FloatArray | None = None, strata: int = 20, adjust: Adjust = "bh", alpha: float = 0.05,
        likelihood_ratio: bool = True) -> list[DifResult]:
    """MH (purified score matching on complete data; ability strata from ``theta_minus[i]`` on
    adaptive data, where ``theta`` is (persons, items): each examinee's estimate without item i)
    and the LR test per item; ``flagged``: ETS class B or C, or the adjusted LR p below alpha.
    ``responses`` 0/1 with MISSING; ``focal`` bool per examinee (the others are the reference)."""
    items = responses.shape[1]
    complete = not (responses == MISSING).any()
    if not complete and theta is None:
        raise ValueError("adaptive data need ability estimates to match examinees on")
    matching = np.ones(items, bool)
    results: list[MantelHaenszel] = []
    for purify in (False, True):
        results = []
        for i in range(items):
            seen = responses[:, i] != MISSING
            if complete:
                stratum = score_strata(responses, matching & (np.arange(items) != i), i)
            else:
                assert theta is not None
                stratum = ability_strata(theta[:, i], strata)
            results.append(mantel_haenszel(responses[seen, i], focal[seen], stratum[seen]))
        if not complete or purify:
            break
        matching = np.array([r.ets_class not in ("B", "C") for r in results])
    lr = np.full((items, 3), np.nan)
    if likelihood_ratio:
        anchors = np.array([r.ets_class not in ("B", "C") for r in results])
        model = FixedAnchors(responses, focal, a, b, c, anchors)
        lr = np.array([model.likelihood_ratio(i) for i in range(items)])
    p_all = chi2.sf(lr[:, 0], 2)
    p_adj = adjust_p(p_all, adjust)
    out = []
    for i, r in enumerate(results):
        flagged = r.ets_class in ("B", "C") or bool(p_adj[i] < alpha)
        out.append(DifResult(r, float(lr[i, 0]), 2 if likelihood_ratio else 0, float(p_all[i]),
                             float(chi2.sf(lr[i, 1], 1)), float(chi2.sf(lr[i, 2], 1)), float(p_adj[i]), flagged))
    return out
