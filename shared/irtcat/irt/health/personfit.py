"""Person fit and response-time effort.

**lz*** (Snijders 2001, *Psychometrika* 66, 331-342; for the 3PL and prior-based estimators
Magis, Raiche & Beland 2012, *Applied Psychological Measurement* 36, 120-139). With P_i the
model probability at the examinee's estimate, P_i' its derivative, w_i = ln(P_i / (1 - P_i)):

    l0 = sum_i x_i ln P_i + (1 - x_i) ln(1 - P_i)
    r_i = P_i' / (P_i (1 - P_i))                    (the score weight of item i)
    c_n = sum_i P_i' w_i / sum_i P_i' r_i
    lz* = (l0 - sum_i [P_i ln P_i + (1 - P_i) ln(1 - P_i)] + c_n r_0) / sqrt(sum_i P_i (1 - P_i) (w_i - c_n r_i)^2)

For partial-credit items (and mixed tests) the same standardisation over each item's categories
(Sinharay 2016, *Psychometrika* 81, 992-1013), with P_ik, P_ik' and w_ik = ln P_ik:

    l0 = sum_i ln P_i,x_i
    c_n = sum_ik P_ik' w_ik / sum_ik P_ik' r_ik,   r_ik = P_ik' / P_ik
    lz* = (l0 - sum_ik P_ik w_ik + c_n r_0) / sqrt(sum_i Var_i(w_ik - c_n r_ik))

(Var_i over item i's categories with probabilities P_ik); for two categories it is the formula
above.

r_0 is the estimator's prior term: 0 for maximum likelihood, -(theta - mu) / sigma^2 for a
normal prior N(mu, sigma^2) (MAP; EAP estimates are treated the same way, the usual
approximation). lz* is asymptotically N(0, 1) with the estimate in place of theta; large
negative values mean an unlikely pattern (one-sided test: flagged when lz* < z_alpha).

**Rapid guessing** (Wise & Ma 2012, normative threshold NT10): a response is a rapid guess
when its time is under 10% of the item's typical time (exp of its mean log response time),
capped at 10 seconds. **Response-time effort** (Wise & Kong 2005): the share of a session's
responses that are not rapid guesses; a session is flagged when it is below 0.90.
**Effort-moderated scoring** (Wise & DeMars 2006) scores the session with its rapid guesses
left out.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from ..model import FloatArray, ItemParameters, prob, prob_derivatives

RAPID_SHARE = 0.10
RAPID_CAP_SECONDS = 10.0
EFFORT_FLOOR = 0.90


def lz_star(x: np.ndarray, params: ItemParameters, theta: float, prior: tuple[float, float] | None = None) -> float:
    """lz* of one response pattern ``x`` (0/1) on items ``params`` at the estimate ``theta``;
    ``prior`` (mu, sigma) for MAP/EAP estimates, None for ML (module docstring)."""
    t = np.array([theta], float)
    p = prob(t[:, None], params)[0]
    dp = prob_derivatives(t[:, None], params)[1][0]
    q = 1.0 - p
    w = np.log(p / q)
    r = dp / (p * q)
    c_n = float(np.sum(dp * w) / np.sum(dp * r))
    r_0 = 0.0 if prior is None else -(theta - prior[0]) / prior[1] ** 2
    l0 = float(np.sum(x * np.log(p) + (1 - x) * np.log(q)))
    expected = float(np.sum(p * np.log(p) + q * np.log(q)))
    var = float(np.sum(p * q * (w - c_n * r) ** 2))
    return (l0 - expected + c_n * r_0) / np.sqrt(var) if var > 0 else float("nan")


def lz_star_categories(x: np.ndarray, probs: list[FloatArray], derivatives: list[FloatArray], theta: float,
                       prior: tuple[float, float] | None = None) -> float:
    """lz* over items of any number of categories (module docstring, Sinharay 2016): ``x`` the
    category of each item, ``probs[i]`` and ``derivatives[i]`` its category probabilities and
    their theta derivatives at the estimate ``theta``."""
    l0 = expected = num = den = var = 0.0
    for k, p, dp in zip(x, probs, derivatives, strict=True):
        p = np.clip(np.asarray(p, float), 1e-12, 1.0)
        w = np.log(p)
        l0 += float(w[int(k)])
        expected += float(p @ w)
        num += float(dp @ w)
        den += float(dp @ (dp / p))
    if den <= 0:
        return float("nan")
    c_n = num / den
    for p, dp in zip(probs, derivatives, strict=True):
        p = np.clip(np.asarray(p, float), 1e-12, 1.0)
        v = np.log(p) - c_n * dp / p
        var += float(p @ v**2 - (p @ v) ** 2)
    r_0 = 0.0 if prior is None else -(theta - prior[0]) / prior[1] ** 2
    return (l0 - expected + c_n * r_0) / np.sqrt(var) if var > 0 else float("nan")


def misfitting(lz: float, alpha: float = 0.05) -> bool:
    """Whether lz* is below the one-sided critical value at ``alpha``."""
    return bool(lz < norm.ppf(alpha))


def rapid_thresholds(mean_log_seconds: FloatArray) -> FloatArray:
    """NT10 per item: 10% of exp(mean log seconds), at most 10 s."""
    out: FloatArray = np.minimum(RAPID_SHARE * np.exp(mean_log_seconds), RAPID_CAP_SECONDS)
    return out


def response_seconds(tablet_ms: FloatArray, server_ms: FloatArray) -> FloatArray:
    """An answer's time: the tablet's measure bounded above by the server's (from the item's
    commit to the answer's arrival; a tablet may claim less, which only hurts it, never more)."""
    out: FloatArray = np.minimum(np.asarray(tablet_ms, float), np.asarray(server_ms, float)) / 1000.0
    return out


def effort(seconds: FloatArray, thresholds: FloatArray) -> tuple[np.ndarray, float, bool]:
    """(rapid guess per response, response-time effort, flagged) for one session's responses."""
    rapid = np.asarray(seconds, float) < np.asarray(thresholds, float)
    rte = float(1.0 - rapid.mean()) if rapid.size else 1.0
    return rapid, rte, rte < EFFORT_FLOOR
