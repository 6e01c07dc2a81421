"""Item calibration by marginal maximum likelihood: Bock-Aitkin EM on sparse (CAT) data.

Data are long format (person, item, response) and live in sparse person x item matrices, so
memory grows with the number of responses, never with persons x items.

* **E-step** (Bock & Aitkin 1981): with quadrature nodes t_q and prior weights g_q, each
  person's posterior over the nodes is w_pq ∝ g_q prod_i P_i(t_q)^x (1 - P_i(t_q))^(1-x); the
  expected counts are n_iq = sum_{p answered i} w_pq and r_iq = sum_{p correct on i} w_pq.
  They are sums over persons, so shards of the data can compute them independently.
* **M-step**: per item, Fisher scoring on
  sum_q r_iq log P_i(t_q) + (n_iq - r_iq) log(1 - P_i(t_q)) + log prior(a, b, c),
  vectorised over items (each item's step is a 1x1, 2x2 or 3x3 solve). Priors (MAP):
  log a ~ N(mu, sigma^2), b ~ N(mu, sigma^2), c ~ Beta(alpha, beta); defaults in
  :meth:`Priors.default` (weak slope and difficulty priors, as BILOG-MG uses, with the slope
  prior's mean floated to the mean log slope each cycle, and a beta prior on c for the 3PL).
  ``Priors()`` gives plain MML.
* **Starting values from the responses alone** (``start="pairwise"``, the default): the Rasch
  pairwise conditional likelihood (Choppin 1968; Zwinderman 1995) compares two items only
  within persons who got exactly one of them right, which removes theta. That is why it works
  on adaptive data, where every item's proportion correct is near 0.5 by design and the
  classical p-value starts (``start="pvalue"``) put every b near 0. The counts
  n_ij = #(i right, j wrong) come from one sparse product X_right^T X_wrong, and the
  Bradley-Terry model on them is fitted with Hunter's (2004) MM algorithm.
* **Fixed parameters / online calibration**: items in ``fixed`` keep their values. MEM
  (Ban et al. 2001; the default) runs full EM cycles in which the posterior uses the fixed
  items and the current pretest estimates. OEM runs one cycle with the posterior from the
  fixed items only. MEM is the default because Ban et al. found it the more accurate, and its
  extra cycles are cheap here.
* **Latent distribution**: ``fixed`` N(0, 1) (default); ``normal`` (mean and variance
  estimated; only meaningful when fixed items anchor the scale); ``histogram``, an empirical
  histogram (Woods 2007) rescaled to mean 0 and variance 1 when nothing anchors the scale.
* **Standard errors** from the observed information by Louis' (1982) identity
  (:func:`observed_information`): the complete-data information plus the cross-products of the
  persons' scores, which carry the uncertainty in the posterior weights.
* **Item fit**: RMSD between the observed and model-implied proportion correct across the
  nodes, weighted by each item's expected counts (the statistic PISA uses; von Davier 2017).
"""

from __future__ import annotations

import io
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from scipy import sparse

from .model import FloatArray

CalibModel = Literal["1PL", "2PL", "3PL"]
StartMethod = Literal["pairwise", "pvalue", "flat"]
Latent = Literal["fixed", "normal", "histogram"]

A_BOUNDS = (0.05, 6.0)
B_BOUNDS = (-6.0, 6.0)
C_BOUNDS = (0.0, 0.5)
EPS = 1e-10
SE_METHOD = "observed information (Louis 1982)"


class CalibrationWarning(UserWarning):
    """The EM reached its iteration cap before converging."""


@dataclass(frozen=True)
class Priors:
    """Optional priors (MAP). ``None`` switches a prior off."""

    log_a: tuple[float, float] | None = None  # (mu, sigma) of log a
    b: tuple[float, float] | None = None  # (mu, sigma)
    c: tuple[float, float] | None = None  # (alpha, beta)
    # re-estimate mu of the log-a prior every cycle from the current slopes (BILOG-MG's FLOAT)
    float_log_a: bool = False

    def floated(self, a: FloatArray) -> Priors:
        """These priors with mu of log a set to the mean log slope of ``a`` when ``float_log_a``.

        Empirical Bayes on the slopes (Mislevy 1986, "Bayes modal estimation in item response
        models"): maximising the joint posterior over the items and mu gives mu = mean(log a_i),
        so updating mu between M-steps is a coordinate-ascent step of the same objective
        (:func:`log_prior`).
        """
        if not self.float_log_a or self.log_a is None or a.size == 0:
            return self
        return replace(self, log_a=(float(np.mean(np.log(a))), self.log_a[1]))

    def describe(self) -> dict[str, object]:
        """The settings as a small JSON-able dict (the form :meth:`from_dict` reads)."""
        return {"log_a": list(self.log_a) if self.log_a else None, "b": list(self.b) if self.b else None,
                "c": list(self.c) if self.c else None, "float_log_a": self.float_log_a}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Priors:
        """Priors from ``{"log_a": [mu, sigma] | null, "b": [mu, sigma] | null,
        "c": [alpha, beta] | null, "float_log_a": bool}`` (missing keys: off). Raises
        ``ValueError`` naming the key when a setting is malformed."""
        unknown = set(doc) - {"log_a", "b", "c", "float_log_a"}
        if unknown:
            raise ValueError(f"unknown prior setting(s): {', '.join(sorted(unknown))} "
                             "(expected log_a, b, c, float_log_a)")

        def pair(key: str, positive_first: bool) -> tuple[float, float] | None:
            value = doc.get(key)
            if value is None:
                return None
            if (not isinstance(value, list | tuple) or len(value) != 2
                    or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)):
                raise ValueError(f"prior {key!r} must be a pair of numbers or null, got {value!r}")
            first, second = float(value[0]), float(value[1])
            if second <= 0 or (positive_first and first <= 0) or not math.isfinite(first + second):
                what = "both must be > 0" if positive_first else "sigma must be > 0"
                raise ValueError(f"prior {key!r} = {value!r}: {what}")
            return first, second

        floated = doc.get("float_log_a", False)
        if not isinstance(floated, bool):
            raise ValueError(f"prior 'float_log_a' must be true or false, got {floated!r}")
        return cls(log_a=pair("log_a", False), b=pair("b", False), c=pair("c", True), float_log_a=floated)

    @classmethod
    def default(cls, model: CalibModel) -> Priors:
        """1PL: none. 2PL: log a ~ N(mu, 0.5^2) and b ~ N(0, 3^2), weak enough to be negligible
        with hundreds of responses, but they keep an item seen by a narrow band of abilities
        (as adaptive tests do) from sliding to a -> 0, b -> +-6. mu floats (starts at 0, then
        the mean log slope): a prior fixed at a = 1 pulls a bank of steeper items down.
        3PL: the same plus c ~ Beta(5, 17) (BILOG-MG's default: mode 0.2).

        Chosen by the calibration study (``benchmarks/calibration_study.py``, docs/calibration.md):
        over slopes N(1.2, 0.25), LogNormal(0, 0.25) and U(0.5, 2.5), guessing Beta(5, 17) and
        U(0, 0.25), complete and CAT-sparse designs, these were at least as accurate as no
        priors and as the PyPI mirt at 41 nodes in every cell; a floated c prior and a
        Beta(4, 16) were each better on one guessing generator and worse on the other."""
        if model == "1PL":
            return cls()
        if model == "2PL":
            return cls(log_a=(0.0, 0.5), b=(0.0, 3.0), float_log_a=True)
        return cls(log_a=(0.0, 0.5), b=(0.0, 3.0), c=(5.0, 17.0), float_log_a=True)


def priors_from(spec: str | dict[str, Any], model: CalibModel) -> Priors:
    """Priors from a setting: "default" (:meth:`Priors.default` for ``model``), "none" (plain
    MML) or a dict of settings (:meth:`Priors.from_dict`)."""
    if isinstance(spec, dict):
        return Priors.from_dict(spec)
    if spec == "default":
        return Priors.default(model)
    if spec == "none":
        return Priors()
    raise ValueError(f"priors must be 'default', 'none' or a dict of settings, got {spec!r}")


@dataclass
class ResponseData:
    """Long-format responses as sparse person x item matrices (0/1 entries).

    When at least half of all person-item cells hold a response (complete designs), the
    matrices are kept dense instead: the same memory per response, and BLAS products.
    """

    right: sparse.csr_matrix | FloatArray  # 1 where correct
    answered: sparse.csr_matrix | FloatArray  # 1 where answered
    n_persons: int
    n_items: int
    right_t: sparse.csr_matrix | FloatArray = field(init=False, repr=False)
    answered_t: sparse.csr_matrix | FloatArray = field(init=False, repr=False)
    n_per_item: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        right: Any = self.right
        answered: Any = self.answered
        if sparse.issparse(answered) and answered.nnz >= 0.5 * self.n_persons * self.n_items:
            self.right = right = right.toarray()
            self.answered = answered = answered.toarray()
        if sparse.issparse(answered):
            self.right_t = right.T.tocsr()
            self.answered_t = answered.T.tocsr()
        else:
            self.right_t = np.ascontiguousarray(self.right.T)
            self.answered_t = np.ascontiguousarray(self.answered.T)
        self.n_per_item = np.asarray(self.answered.sum(axis=0)).ravel().astype(np.int64)

    @classmethod
    def from_long(cls, person: np.ndarray, item: np.ndarray, response: np.ndarray,
                  n_persons: int | None = None, n_items: int | None = None) -> ResponseData:
        """Build from index arrays; duplicate (person, item) rows are an error."""
        person = np.asarray(person, dtype=np.int64)
        item = np.asarray(item, dtype=np.int64)
        response = np.asarray(response)
        if not (person.shape == item.shape == response.shape):
            raise ValueError("person, item and response must have the same length")
        if person.size == 0:
            raise ValueError("no responses")
        if np.any((response != 0) & (response != 1)):
            raise ValueError("responses must be 0 or 1")
        n_p = int(person.max()) + 1 if n_persons is None else n_persons
        n_i = int(item.max()) + 1 if n_items is None else n_items
        ones = np.ones(person.size)
        answered = sparse.csr_matrix((ones, (person, item)), shape=(n_p, n_i))
        # building the matrix sums duplicate cells: a count above 1 is a repeated row (and much
        # cheaper than np.unique, whose hash path takes 0.35 s on 500,000 keys)
        if answered.nnz and answered.data.max() > 1:
            raise ValueError("duplicate person-item responses")
        right = sparse.csr_matrix((response.astype(np.float64), (person, item)), shape=(n_p, n_i))
        right.eliminate_zeros()
        return cls(right, answered, n_p, n_i)

    @property
    def n_responses(self) -> int:
        return int(self.n_per_item.sum())

    def per_item(self) -> np.ndarray:
        return self.n_per_item

    def sparse_right(self) -> sparse.csr_matrix:
        return sparse.csr_matrix(self.right)

    def sparse_wrong(self) -> sparse.csr_matrix:
        return sparse.csr_matrix(self.answered) - sparse.csr_matrix(self.right)


@dataclass
class ItemEstimates:
    a: FloatArray
    b: FloatArray
    c: FloatArray

    def copy(self) -> ItemEstimates:
        return ItemEstimates(self.a.copy(), self.b.copy(), self.c.copy())

    def vector(self) -> FloatArray:
        return np.concatenate([self.a, self.b, self.c])


@dataclass
class CalibrationResult:
    """Estimates with standard errors, fit, and the run's summary."""

    model: CalibModel
    a: FloatArray
    b: FloatArray
    c: FloatArray
    se_a: FloatArray
    se_b: FloatArray
    se_c: FloatArray
    n_responses: np.ndarray
    rmsd: FloatArray
    estimated: np.ndarray  # bool: False for fixed items and items left out
    left_out: dict[int, str]
    log_likelihood: float
    iterations: int
    converged: bool
    seconds: float
    n_persons: int
    latent_mean: float
    latent_sd: float
    # log-likelihood + log prior at each accepted point of the EM path (never falls)
    objective_trace: list[float] = field(default_factory=list)
    covariance: FloatArray | None = None  # of the free items' parameters, item-major (b, a, c)[:k]
    priors: Priors = field(default_factory=lambda: Priors())
    se_method: str = SE_METHOD

    @property
    def n_parameters(self) -> int:
        per_item = {"1PL": 1, "2PL": 2, "3PL": 3}[self.model]
        return int(self.estimated.sum()) * per_item

    def summary(self) -> dict[str, object]:
        """-2LL, AIC, BIC (n = persons), iterations, convergence and counts."""
        k = self.n_parameters
        return {
            "model": self.model,
            "iterations": self.iterations,
            "converged": self.converged,
            "log_likelihood": self.log_likelihood,
            "minus_2ll": -2 * self.log_likelihood,
            "aic": -2 * self.log_likelihood + 2 * k,
            "bic": -2 * self.log_likelihood + k * math.log(max(self.n_persons, 1)),
            "n_parameters": k,
            "n_items": int(self.a.size),
            "n_estimated": int(self.estimated.sum()),
            "n_left_out": len(self.left_out),
            "n_persons": self.n_persons,
            "n_responses": int(self.n_responses.sum()),
            "latent_mean": self.latent_mean,
            "latent_sd": self.latent_sd,
            "priors": self.priors.describe(),
            "se_method": self.se_method,
            "seconds": self.seconds,
        }


def quadrature(n_nodes: int = 41, kind: Literal["equal", "hermite"] = "equal",
               bound: float = 6.0) -> tuple[FloatArray, FloatArray]:
    """Nodes and standard-normal weights: equally spaced on [-bound, bound], or Gauss-Hermite
    (probabilists', ``numpy.polynomial.hermite_e``)."""
    if n_nodes < 5:
        raise ValueError("use at least 5 quadrature nodes")
    if kind == "hermite":
        nodes, weights = np.polynomial.hermite_e.hermegauss(n_nodes)
    elif kind == "equal":
        nodes = np.linspace(-bound, bound, n_nodes)
        weights = np.exp(-0.5 * nodes**2)
    else:
        raise ValueError(f"unknown quadrature {kind!r}")
    return nodes, weights / weights.sum()


def _prob(est: ItemEstimates, nodes: FloatArray) -> FloatArray:
    """P_i(t_q), shape (items, nodes)."""
    z = est.a[:, None] * (nodes[None, :] - est.b[:, None])
    s = 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))
    out: FloatArray = np.clip(est.c[:, None] + (1 - est.c[:, None]) * s, EPS, 1 - EPS)
    return out


def _log_posterior(data: ResponseData, est: ItemEstimates, nodes: FloatArray,
                   log_weights: FloatArray, use: np.ndarray | None = None) -> FloatArray:
    """Unnormalised log posterior per person and node, (persons, nodes).

    log L_pq = sum_i x_pi logit P_iq + sum_i log(1 - P_iq), over the items each person
    answered (``use`` restricts to a subset of items, for OEM).
    """
    p = _prob(est, nodes)
    logit = np.log(p) - np.log1p(-p)
    log_q = np.log1p(-p)
    if use is not None:
        logit = np.where(use[:, None], logit, 0.0)
        log_q = np.where(use[:, None], log_q, 0.0)
    out: FloatArray = data.right @ logit + data.answered @ log_q + log_weights[None, :]
    return out


def _posterior(log_post: FloatArray) -> tuple[FloatArray, float]:
    """Normalised posterior weights and the marginal log-likelihood. ``log_post`` must be a
    temporary: it is overwritten by the weights (one array pass fewer per E-step)."""
    m = log_post.max(axis=1, keepdims=True)
    log_post -= m
    np.exp(log_post, out=log_post)
    total = log_post.sum(axis=1, keepdims=True)
    ll = float(np.sum(np.log(total) + m))
    log_post /= total
    return log_post, ll


def _expected_counts(data: ResponseData, w: FloatArray) -> tuple[FloatArray, FloatArray]:
    """n_iq and r_iq: the E-step's sufficient statistics, (items, nodes) each."""
    n: FloatArray = np.asarray(data.answered_t @ w)
    r: FloatArray = np.asarray(data.right_t @ w)
    return n, r


@dataclass
class ExpectedCounts:
    """The E-step's sufficient statistics over a set of persons (Bock & Aitkin 1981):
    n_iq and r_iq (items x nodes), the posterior mass per node, the marginal log-likelihood
    and the number of persons; on the final pass also the score products of
    :func:`score_products` (for the observed information); in a run with partial-credit items
    also their expected category counts r_ikq (items x categories x nodes). Every field is a
    sum over persons, so the statistics of disjoint shards of persons add up to those of the
    whole data: the M-step and the standard errors need only the sum.
    """

    n: FloatArray
    r: FloatArray
    mass: FloatArray
    log_likelihood: float
    n_persons: int
    score_products: FloatArray | None = None
    categories: FloatArray | None = None

    @classmethod
    def zeros(cls, n_items: int, n_nodes: int) -> ExpectedCounts:
        return cls(np.zeros((n_items, n_nodes)), np.zeros((n_items, n_nodes)), np.zeros(n_nodes), 0.0, 0)

    def __add__(self, other: ExpectedCounts) -> ExpectedCounts:
        if self.n.shape != other.n.shape:
            raise ValueError(f"expected counts of shape {self.n.shape} and {other.n.shape} do not add")
        empty = self.n_persons == 0
        return ExpectedCounts(self.n + other.n, self.r + other.r, self.mass + other.mass,
                              self.log_likelihood + other.log_likelihood, self.n_persons + other.n_persons,
                              _add_optional(self.score_products, other.score_products, empty, "score products"),
                              _add_optional(self.categories, other.categories, empty, "category counts"))

    def to_bytes(self) -> bytes:
        """A compact binary form (``numpy.savez``) for moving shard results through storage."""
        buf = io.BytesIO()
        arrays: dict[str, Any] = {"n": self.n, "r": self.r, "mass": self.mass,
                                  "scalars": np.array([self.log_likelihood, float(self.n_persons)])}
        for name in ("score_products", "categories"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        np.savez(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, raw: bytes) -> ExpectedCounts:
        with np.load(io.BytesIO(raw)) as z:
            ll, persons = z["scalars"]
            optional = {name: z[name] if name in z.files else None for name in ("score_products", "categories")}
            return cls(z["n"], z["r"], z["mass"], float(ll), int(persons), **optional)


def _add_optional(x: FloatArray | None, y: FloatArray | None, empty: bool, what: str) -> FloatArray | None:
    """The sum of two shards' optional statistics; a shard without them only adds to an empty total."""
    if x is None or y is None:
        if empty:
            return y
        if x is None and y is None:
            return None
        raise ValueError(f"{what} are present in some shards' statistics only")
    return x + y


def e_step(data: ResponseData, est: ItemEstimates, nodes: FloatArray, log_weights: FloatArray,
           use: np.ndarray | None = None,
           information: tuple[CalibModel, np.ndarray] | None = None,
           anchors: FloatArray | None = None) -> ExpectedCounts:
    """One E-step over ``data``'s persons: posterior weights w_pq at ``est`` (``use``: only these
    items inform the posterior, as in OEM) and their expected counts n_iq, r_iq.
    ``information=(model, free)`` adds the score products of the free items' parameters
    (:func:`score_products`), which the standard errors need. ``anchors`` (persons x nodes)
    adds the log-likelihood of each person's answers to other items (those of a joint run's
    partial-credit items, or items held fixed)."""
    log_post = _log_posterior(data, est, nodes, log_weights, use)
    w, ll = _posterior(log_post if anchors is None else log_post + anchors)
    n, r = _expected_counts(data, w)
    products = None if information is None else score_products(data, est, nodes, w, *information)
    return ExpectedCounts(n, r, w.sum(axis=0), ll, data.n_persons, products)


# ------------------------------------------------------------------ observed information

# posterior weights below this at a node add nothing measurable to the score products
_W_NEGLIGIBLE = 1e-12


def score_products(data: ResponseData, est: ItemEstimates, nodes: FloatArray, w: FloatArray,
                   model: CalibModel, free: np.ndarray) -> FloatArray:
    """The person-level part of Louis' (1982) observed information, summed over persons:

        C = sum_p [ u_p u_p^T - sum_q w_pq s_pq s_pq^T ],   u_p = sum_q w_pq s_pq,

    where s_pq is person p's complete-data score at node q for the free items' parameters
    ((b, a, c)[:k] per free item, item-major) and w_pq the posterior weights. Louis' identity
    then gives I_obs = E[-H_complete] + C; the first term is block-diagonal by item and comes
    from the expected counts (:func:`observed_information`). C carries the cross-item terms
    that the complete-data information misses. A sum over persons: shards add up.
    """
    k = _param_count(model)
    idx = np.flatnonzero(free)
    size = idx.size * k
    out = np.zeros((size, size))
    if idx.size == 0:
        return out
    pos = np.full(data.n_items, -1)
    pos[idx] = np.arange(idx.size)
    p, jac, _ = _response_function(est.a[idx], est.b[idx], est.c[idx], nodes, k)
    dp = np.stack(jac, axis=-1)  # (free items, nodes, k)
    d_right = dp / p[..., None]  # d log P
    d_wrong = -dp / (1 - p)[..., None]  # d log (1 - P)
    if sparse.issparse(data.answered):
        return out + _sparse_score_products(data, w, pos, d_right, d_wrong, k, size)
    # dense data: with s_pq = A_p d_wrong_q + X_p (d_right_q - d_wrong_q) per item (A answered,
    # X right), sum_p w_pq s_pq s_pq^T needs only item-by-item products A^T W A, A^T W X,
    # X^T W X per node (k^2 times fewer flops than parameter-by-parameter ones)
    answered = np.asarray(data.answered)[:, idx]
    right = np.asarray(data.right)[:, idx]
    complete = bool(np.all(answered > 0))
    delta = d_right - d_wrong  # (free items, nodes, k)
    for q in range(nodes.size):
        keep = w[:, q] > _W_NEGLIGIBLE
        wq = w[keep, q]
        x_kept = right[keep]
        xx = x_kept.T @ (x_kept * wq[:, None])
        if complete:
            ax = np.broadcast_to(wq @ x_kept, xx.shape)
            aa = np.full(xx.shape, wq.sum())
        else:
            a_kept = answered[keep]
            ax = a_kept.T @ (x_kept * wq[:, None])
            aa = a_kept.T @ (a_kept * wq[:, None])
        d0, d1 = d_wrong[:, q, :], delta[:, q, :]
        for u in range(k):
            for v in range(k):
                out[u::k, v::k] -= (aa * np.outer(d0[:, u], d0[:, v]) + ax * np.outer(d0[:, u], d1[:, v])
                                    + ax.T * np.outer(d1[:, u], d0[:, v]) + xx * np.outer(d1[:, u], d1[:, v]))
    # u_p = sum_q w_pq s_pq, parameter by parameter
    n_free = idx.size
    base = (w @ d_wrong.transpose(1, 0, 2).reshape(nodes.size, size)).reshape(-1, n_free, k)
    slope = (w @ delta.transpose(1, 0, 2).reshape(nodes.size, size)).reshape(-1, n_free, k)
    u_dense = (answered[:, :, None] * base + right[:, :, None] * slope).reshape(data.n_persons, size)
    out += u_dense.T @ u_dense
    return out


# persons per batch of the sparse score products (bounds the batch's arrays to a few 10 MB)
_PERSONS_PER_BATCH = 2000


def _sparse_score_products(data: ResponseData, w: FloatArray, pos: np.ndarray, d_right: FloatArray,
                           d_wrong: FloatArray, k: int, size: int) -> FloatArray:
    """:func:`score_products` for sparse data, person by person: each person's score vectors
    at the nodes, F_p (nodes x n_p k), give sum_q w_pq s s^T = F_p^T diag(w_p) F_p and u_p = F_p^T w_p,
    computed for batches of persons with the same number of responses (one batched matmul),
    then added into the (K, K) result at the persons' parameters."""
    coded = (sparse.csr_matrix(data.answered) + sparse.csr_matrix(data.right)).tocoo()  # 1 wrong, 2 right
    mine = pos[coded.col] >= 0
    person, item, right = coded.row[mine], pos[coded.col[mine]], coded.data[mine] > 1.5
    order = np.argsort(person, kind="stable")
    person, item, right = person[order], item[order], right[order]
    n_per = np.bincount(person, minlength=data.n_persons)
    first = np.concatenate([[0], np.cumsum(n_per)[:-1]])
    total = np.zeros(size * size)
    for n in np.unique(n_per[n_per > 0]):
        group = np.flatnonzero(n_per == n)
        for chunk in np.array_split(group, max(1, group.size // _PERSONS_PER_BATCH)):
            rows = first[chunk][:, None] + np.arange(n)[None, :]  # (m, n) response indices
            its, rts = item[rows], right[rows]
            f = np.where(rts[:, :, None, None], d_right[its], d_wrong[its])  # (m, n, nodes, k)
            f = f.transpose(0, 2, 1, 3).reshape(chunk.size, w.shape[1], n * k)  # (m, nodes, n k)
            wf = w[chunk][:, :, None] * f
            u = wf.sum(axis=1)
            block = u[:, :, None] * u[:, None, :] - wf.transpose(0, 2, 1) @ f
            cols = (its[:, :, None] * k + np.arange(k)[None, None, :]).reshape(chunk.size, n * k)
            flat = cols[:, :, None] * size + cols[:, None, :]
            total += np.bincount(flat.ravel(), weights=block.ravel(), minlength=size * size)
    out: FloatArray = total.reshape(size, size)
    return out


def observed_information(est: ItemEstimates, counts: ExpectedCounts, nodes: FloatArray, model: CalibModel,
                         priors: Priors, free: np.ndarray) -> FloatArray:
    """The observed information of the free items' parameters (Louis 1982, eq. 3.1): minus the
    Hessian of the observed-data log-likelihood plus log prior, (K, K) with K = k * free items,
    item-major, (b, a, c)[:k] within an item.

    I_obs = sum_i,q [ r_iq (-P''/P + P' P'^T / P^2) + (n_iq - r_iq) (P''/(1-P) + P' P'^T/(1-P)^2) ]
            (block-diagonal: the expected complete-data information, with observed curvature)
          + C (:func:`score_products`: the cross-products of the scores, within and across items)
          - the Hessian of the log prior.
    ``counts`` must come from an E-step at ``est`` with all items informing the posterior and
    with ``information=(model, free)``. The latent distribution is taken as known.
    """
    if counts.score_products is None:
        raise ValueError("the observed information needs an E-step with information=(model, free)")
    k = _param_count(model)
    idx = np.flatnonzero(free)
    a, b, c = est.a[idx], est.b[idx], est.c[idx]
    p, jac, s = _response_function(a, b, c, nodes, k)
    dp = np.stack(jac, axis=-1)
    outer = dp[..., :, None] * dp[..., None, :]
    hess = _response_hessian(a, b, c, s, nodes, k)
    rr = counts.r[idx][..., None, None]
    wrong = (counts.n[idx] - counts.r[idx])[..., None, None]
    pp = p[..., None, None]
    block = np.sum(rr * (outer / pp**2 - hess / pp) + wrong * (outer / (1 - pp) ** 2 + hess / (1 - pp)), axis=1)
    block += _prior_gradient_and_information(a, b, c, priors, k)[1]
    info = counts.score_products.copy()
    for j in range(idx.size):
        info[j * k:(j + 1) * k, j * k:(j + 1) * k] += block[j]
    return info


def _covariance(info: FloatArray) -> FloatArray:
    """The inverse of the observed information; NaN where it is not positive definite (e.g.
    a parameter at its bound, where the likelihood's maximum is not a stationary point)."""
    size = info.shape[0]
    if size == 0:
        return info
    sym = 0.5 * (info + info.T)
    try:
        np.linalg.cholesky(sym)
        inverse: FloatArray = np.asarray(np.linalg.inv(sym), dtype=np.float64)
        return inverse
    except np.linalg.LinAlgError:
        pass
    values, vectors = np.linalg.eigh(sym)
    good = values > 1e-10 * max(float(np.max(values)), 1e-300)
    cov: FloatArray = (vectors[:, good] / values[good]) @ vectors[:, good].T
    # a direction with no curvature makes the variance of the parameters in it unknown
    null = np.abs(vectors[:, ~good]).max(axis=1) > 1e-6 if (~good).any() else np.zeros(size, bool)
    cov[null, :] = np.nan
    cov[:, null] = np.nan
    return cov



def _param_count(model: CalibModel) -> int:
    return {"1PL": 1, "2PL": 2, "3PL": 3}[model]


def _response_function(a: FloatArray, b: FloatArray, c: FloatArray, nodes: FloatArray,
                       k: int) -> tuple[FloatArray, list[FloatArray], FloatArray]:
    """P_i(t_q), its first derivatives dP/d(b, a, c)[:k] and sigma (items x nodes each)."""
    t = nodes[None, :]
    z = a[:, None] * (t - b[:, None])
    s = 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))
    p = np.clip(c[:, None] + (1 - c[:, None]) * s, EPS, 1 - EPS)
    ds = s * (1 - s)
    jac = [-(1 - c[:, None]) * ds * a[:, None]]
    if k >= 2:
        jac.append((1 - c[:, None]) * ds * (t - b[:, None]))
    if k == 3:
        jac.append(1 - s)
    return p, jac, s


def _response_hessian(a: FloatArray, b: FloatArray, c: FloatArray, s: FloatArray, nodes: FloatArray,
                      k: int) -> FloatArray:
    """Second derivatives of P_i(t_q) in (b, a, c)[:k]: (items, nodes, k, k).

    With z = a (t - b), P = c + (1 - c) sigma(z), sigma' = sigma (1 - sigma) and
    sigma'' = sigma' (1 - 2 sigma): P_bb = (1-c) sigma'' a^2, P_aa = (1-c) sigma'' (t-b)^2,
    P_ab = -(1-c) (sigma'' a (t-b) + sigma'), P_cb = sigma' a, P_ca = -sigma' (t-b), P_cc = 0.
    """
    t = nodes[None, :]
    d = (t - b[:, None])
    ds = s * (1 - s)
    d2 = ds * (1 - 2 * s)
    one_c = (1 - c)[:, None]
    aa = a[:, None]
    out = np.zeros((*s.shape, k, k))
    out[..., 0, 0] = one_c * d2 * aa**2
    if k >= 2:
        out[..., 1, 1] = one_c * d2 * d**2
        out[..., 0, 1] = out[..., 1, 0] = -one_c * (d2 * aa * d + ds)
    if k == 3:
        out[..., 2, 0] = out[..., 0, 2] = ds * aa
        out[..., 2, 1] = out[..., 1, 2] = -ds * d
    return out


def _item_log_prior(a: FloatArray, b: FloatArray, c: FloatArray, priors: Priors, k: int) -> FloatArray:
    """log prior density of each item's free parameters (up to constants)."""
    out = np.zeros(b.shape)
    if priors.b is not None:
        mu, sd = priors.b
        out -= 0.5 * ((b - mu) / sd) ** 2
    if k >= 2 and priors.log_a is not None:
        mu, sd = priors.log_a
        out -= 0.5 * ((np.log(a) - mu) / sd) ** 2 + np.log(a)  # the density of a, not of log a
    if k == 3 and priors.c is not None:
        al, be = priors.c
        out += (al - 1) * np.log(c) + (be - 1) * np.log1p(-c)
    return out


def _prior_gradient_and_information(a: FloatArray, b: FloatArray, c: FloatArray, priors: Priors,
                                    k: int) -> tuple[FloatArray, FloatArray]:
    """Gradient of :func:`_item_log_prior` (items, k) and its negative Hessian (items, k, k)."""
    grad = np.zeros((b.size, k))
    info = np.zeros((b.size, k, k))
    if priors.b is not None:
        mu, sd = priors.b
        grad[:, 0] -= (b - mu) / sd**2
        info[:, 0, 0] += 1 / sd**2
    if k >= 2 and priors.log_a is not None:
        mu, sd = priors.log_a
        u = np.log(a) - mu
        grad[:, 1] += -u / (sd**2 * a) - 1 / a
        info[:, 1, 1] += (1 - u) / (sd**2 * a**2) - 1 / a**2
    if k == 3 and priors.c is not None:
        al, be = priors.c
        grad[:, 2] += (al - 1) / c - (be - 1) / (1 - c)
        info[:, 2, 2] += (al - 1) / c**2 + (be - 1) / (1 - c) ** 2
    return grad, info


def _objective(a: FloatArray, b: FloatArray, c: FloatArray, nn: FloatArray, rr: FloatArray,
               nodes: FloatArray, priors: Priors, k: int) -> FloatArray:
    """Each item's expected complete-data log-likelihood plus its log prior:
    Q_i = sum_q r_iq log P_i(t_q) + (n_iq - r_iq) log(1 - P_i(t_q)) + log prior_i."""
    z = a[:, None] * (nodes[None, :] - b[:, None])
    s = 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))
    p = np.clip(c[:, None] + (1 - c[:, None]) * s, EPS, 1 - EPS)
    out: FloatArray = np.sum(rr * np.log(p) + (nn - rr) * np.log1p(-p), axis=1) + _item_log_prior(a, b, c, priors, k)
    return out


def _bounds(k: int) -> tuple[FloatArray, FloatArray]:
    """Lower and upper bounds of (b, a, c)[:k]."""
    lower = np.array([B_BOUNDS[0], A_BOUNDS[0], C_BOUNDS[0] + 1e-4])[:k]
    upper = np.array([B_BOUNDS[1], A_BOUNDS[1], C_BOUNDS[1]])[:k]
    return lower, upper


def _m_step(est: ItemEstimates, n: FloatArray, r: FloatArray, nodes: FloatArray, model: CalibModel,
            priors: Priors, free: np.ndarray, iters: int = 3) -> ItemEstimates:
    """A few projected Fisher-scoring steps per free item on Q_i (:func:`_objective`), each
    accepted only where it does not lower Q_i: a generalised EM step (Dempster, Laird & Rubin
    1977, section 3), so the observed-data log-likelihood plus log prior never falls.

    Parameters at a bound whose gradient points outwards are held for the step (an active
    set), so that a c at its lower bound no longer drags a and b along a step that was solved
    with it free. A Newton step that finds no ascent after halving falls back to a projected,
    diagonally scaled gradient step, which always ascends for a small enough length.
    """
    out = est.copy()
    k = _param_count(model)
    idx = np.flatnonzero(free)
    if idx.size == 0:
        return out
    nn, rr = n[idx], r[idx]
    lower, upper = _bounds(k)
    theta = np.stack([out.b[idx], out.a[idx], out.c[idx]], axis=1)[:, :k]
    rest_a, rest_c = out.a[idx], out.c[idx]

    def unpack(th: FloatArray, rows: np.ndarray | slice) -> tuple[FloatArray, FloatArray, FloatArray]:
        a = th[:, 1] if k >= 2 else rest_a[rows]
        c = th[:, 2] if k == 3 else rest_c[rows]
        return a, th[:, 0], c

    def objective(th: FloatArray, rows: np.ndarray | slice) -> FloatArray:
        a, b, c = unpack(th, rows)
        return _objective(a, b, c, nn[rows], rr[rows], nodes, priors, k)

    current = objective(theta, slice(None))
    for _ in range(iters):
        a, b, c = unpack(theta, slice(None))
        p, jac, _ = _response_function(a, b, c, nodes, k)
        wgt = 1.0 / (p * (1 - p))
        resid = (rr - nn * p) * wgt
        grad = np.stack([np.sum(resid * j, axis=1) for j in jac], axis=1)
        fisher = np.empty((idx.size, k, k))
        for u in range(k):
            for v in range(u, k):
                fisher[:, u, v] = fisher[:, v, u] = np.sum(nn * wgt * jac[u] * jac[v], axis=1)
        prior_grad, prior_info = _prior_gradient_and_information(a, b, c, priors, k)
        grad += prior_grad
        # the prior's curvature where it is positive (the log-normal's is not everywhere)
        fisher += np.maximum(prior_info, 0.0) * np.eye(k)[None]
        held = ((theta <= lower + 1e-12) & (grad < 0)) | ((theta >= upper - 1e-12) & (grad > 0))
        g = np.where(held, 0.0, grad)
        keep = (~held).astype(float)
        system = fisher * keep[:, :, None] * keep[:, None, :] + np.eye(k)[None] * (1 - keep)[:, :, None]
        newton = np.linalg.solve(system + 1e-9 * np.eye(k)[None], g[..., None])[..., 0]
        scaled = g / np.maximum(np.diagonal(fisher, axis1=1, axis2=2), 1e-9)
        pending = np.ones(idx.size, dtype=bool)
        for direction in (newton, scaled):
            # keep steps modest: EM only needs to improve, and big jumps overshoot on sparse items
            direction = np.clip(direction, -1.0, 1.0)
            length = 1.0
            for _ in range(20):
                rows = np.flatnonzero(pending)
                if rows.size == 0:
                    break
                trial = np.clip(theta[rows] + length * direction[rows], lower, upper)
                value = objective(trial, rows)
                up = value >= current[rows]
                theta[rows[up]], current[rows[up]] = trial[up], value[up]
                pending[rows[up]] = False
                length /= 2
    a, b, c = unpack(theta, slice(None))
    out.a[idx], out.b[idx], out.c[idx] = a, b, c
    return out


def pairwise_difficulties(data: ResponseData, iterations: int = 200, tol: float = 1e-6) -> FloatArray:
    """Rasch difficulties from the pairwise conditional likelihood (mean 0).

    n_ij = number of persons right on i and wrong on j; P(i right | one of i, j right) =
    exp(-b_i) / (exp(-b_i) + exp(-b_j)) does not involve theta. Bradley-Terry by Hunter's MM
    with a half-count pseudo-comparison against a virtual item at b = 0, so that items
    never compared, always right or always wrong stay finite.
    """
    wrong = data.sparse_wrong()
    right_t = data.sparse_right().T.tocsr()
    if data.n_items > 4000:  # very large banks: keep the comparison counts sparse
        return _pairwise_sparse(right_t @ wrong, iterations, tol)
    nij = (right_t @ wrong).toarray()
    np.fill_diagonal(nij, 0.0)
    wins = nij.sum(axis=1) + 0.5
    games = nij + nij.T
    pi = np.ones(data.n_items)
    for _ in range(iterations):
        denom = (games / (pi[:, None] + pi[None, :])).sum(axis=1) + 1.0 / (pi + 1.0)
        new = wins / denom
        new /= np.exp(np.mean(np.log(new)))
        if np.max(np.abs(np.log(new) - np.log(pi))) < tol:
            pi = new
            break
        pi = new
    b = -np.log(pi)
    out: FloatArray = b - b.mean()
    return out


def _pairwise_sparse(nij: sparse.spmatrix, iterations: int, tol: float) -> FloatArray:
    nij = sparse.csr_matrix(nij)
    nij.setdiag(0)
    nij.eliminate_zeros()
    games = (nij + nij.T).tocoo()
    wins = np.asarray(nij.sum(axis=1)).ravel() + 0.5
    pi = np.ones(nij.shape[0])
    for _ in range(iterations):
        vals = games.data / (pi[games.row] + pi[games.col])
        denom = np.bincount(games.row, weights=vals, minlength=pi.size) + 1.0 / (pi + 1.0)
        new = wins / denom
        new /= np.exp(np.mean(np.log(new)))
        done = np.max(np.abs(np.log(new) - np.log(pi))) < tol
        pi = new
        if done:
            break
    b = -np.log(pi)
    out: FloatArray = b - b.mean()
    return out


def starting_values(data: ResponseData, model: CalibModel, method: StartMethod) -> ItemEstimates:
    """Starting values for a, b, c: b from the pairwise conditional likelihood (default; see the
    module docstring), from the proportion correct (``pvalue``: b = -logit(p) / 1.2, the
    classical start that fails on adaptive data) or 0 (``flat``); a = 1; c = 0.2 (3PL)."""
    m = data.n_items
    if method == "pairwise":
        # the pairwise (Rasch) metric has its own unit; a bank targeted at its population has
        # difficulties spread like the N(0, 1) abilities, so the start is put on unit SD
        raw = pairwise_difficulties(data)
        seen = data.per_item() > 0
        sd = float(raw[seen].std()) if seen.sum() > 1 else 1.0
        b = (raw - raw[seen].mean()) / (sd if sd > 0 else 1.0)
    elif method == "pvalue":
        n = np.maximum(data.per_item(), 1)
        p = np.clip(np.asarray(data.right.sum(axis=0)).ravel() / n, 0.02, 0.98)
        b = -np.log(p / (1 - p)) / 1.2
    elif method == "flat":
        b = np.zeros(m)
    else:
        raise ValueError(f"unknown start {method!r}")
    a = np.ones(m)
    c = np.full(m, 0.2 if model == "3PL" else 0.0)
    return ItemEstimates(a, np.clip(b, *B_BOUNDS), c)


def calibrate(
    data: ResponseData,
    model: CalibModel = "2PL",
    *,
    fixed: dict[int, tuple[float, float, float]] | None = None,
    method: Literal["mem", "oem"] = "mem",
    n_nodes: int = 41,
    nodes_kind: Literal["equal", "hermite"] = "equal",
    priors: Priors | None = None,
    start: StartMethod = "pairwise",
    initial: ItemEstimates | None = None,
    latent: Latent = "fixed",
    max_iter: int = 500,
    tol: float = 1e-4,
    ll_tol: float = 1e-7,
    min_responses: int = 30,
    accelerate: bool = True,
    progress: Callable[[int, float, float], None] | None = None,
) -> CalibrationResult:
    """Marginal maximum likelihood by Bock-Aitkin EM; see the module docstring.

    ``fixed`` maps item index -> (a, b, c) held at those values. Converged when the largest
    parameter change is below ``tol`` and the relative change of the log-likelihood is below
    ``ll_tol``; otherwise stops at ``max_iter`` with a :class:`CalibrationWarning`.
    ``progress(cycle, log_likelihood, max_change)`` is called after every cycle.
    """
    started = time.perf_counter()
    if model not in ("1PL", "2PL", "3PL"):
        raise ValueError(f"unknown model {model!r}")
    priors = priors if priors is not None else Priors.default(model)
    fixed = fixed or {}
    nodes, weights = quadrature(n_nodes, nodes_kind)
    counts = data.per_item()
    is_fixed = np.zeros(data.n_items, dtype=bool)
    if fixed:
        is_fixed[np.fromiter(fixed, dtype=np.int64)] = True
    left_out = {int(i): f"too few responses ({counts[i]} < {min_responses})"
                for i in np.flatnonzero((counts < min_responses) & ~is_fixed)}
    free = ~is_fixed & (counts >= min_responses)
    est = initial.copy() if initial is not None else starting_values(data, model, start)
    if model != "3PL":
        est.c[:] = 0.0
    if model == "1PL":
        est.a[:] = 1.0
    for i, (a, b, c) in fixed.items():
        est.a[i], est.b[i], est.c[i] = a, b, c
    use = is_fixed if (method == "oem" and fixed) else None
    informed = free | is_fixed  # the items whose slopes inform a floated prior
    state: dict[str, Any] = {"log_w": np.log(weights), "mean": 0.0, "sd": 1.0}
    anchored = bool(fixed) or model == "1PL"

    def em(cur: ItemEstimates) -> tuple[ItemEstimates, float]:
        """One EM cycle: the posterior at ``cur``, then the M-step. Returns the new estimates and
        the objective at ``cur``: its log-likelihood plus log prior (:func:`log_prior`)."""
        counts = e_step(data, cur, nodes, state["log_w"], use)
        at = priors.floated(cur.a[informed])
        new = _m_step(cur, counts.n, counts.r, nodes, model, at, free)
        if latent != "fixed":
            state["log_w"], state["mean"], state["sd"] = _update_latent(counts.mass, nodes, latent, anchored)
        return new, counts.log_likelihood + log_prior(cur, at, model, free, informed)

    trace: list[float] = []
    converged = False
    it = 0
    if method == "oem" and fixed:
        est, objective = em(est)
        trace.append(objective)
        it = 1
    else:
        # SQUAREM (Varadhan & Roland 2008, scheme S3) around the EM map, with a monotone
        # safeguard: an extrapolation whose objective falls below that of the plain EM path's
        # second point is dropped for that path. ``trace`` holds the objective at each accepted
        # point, so it never falls. ``accelerate=False`` runs plain EM.
        while it < max_iter:
            before = est

            def project(vec: FloatArray, base: ItemEstimates = est) -> ItemEstimates:
                return _clip_estimates(_from_vector(vec, base.a.size), model, free, base)

            est, value, used = em_cycle(em, est, ItemEstimates.vector, project, accelerate and it + 3 <= max_iter)
            it += used
            trace.append(value)
            change = float(np.max(np.abs(est.vector() - before.vector()))) if free.any() else 0.0
            if progress:
                progress(it, trace[-1], change)
            if len(trace) >= 2 and change < tol and abs(trace[-1] - trace[-2]) <= ll_tol * abs(trace[-1]):
                converged = True
                break
    log_w, mean, sd = state["log_w"], float(state["mean"]), float(state["sd"])
    if method == "oem" and fixed:
        converged = True
    elif not converged:
        warnings.warn(f"EM stopped at the iteration cap ({max_iter}) before converging",
                      CalibrationWarning, stacklevel=2)
    final = e_step(data, est, nodes, log_w, None, information=(model, free))
    return finish(est, final, nodes, model, priors.floated(est.a[informed]), free, counts, left_out, it, converged,
                  time.perf_counter() - started, mean, sd, trace)


def log_prior(est: ItemEstimates, priors: Priors, model: CalibModel, free: np.ndarray,
              informed: np.ndarray) -> float:
    """The log prior of the free items' parameters (up to constants), plus, for a slope prior,
    the log-a terms of the fixed items that inform it: with those, the floated mean
    (:meth:`Priors.floated`) maximises this sum, so floating it between M-steps is a step of
    coordinate ascent on log-likelihood + log prior (the objective whose ascent EM guarantees)."""
    k = _param_count(model)
    total = float(np.sum(_item_log_prior(est.a[free], est.b[free], est.c[free], priors, k)))
    anchors = informed & ~free
    if k >= 2 and priors.log_a is not None and anchors.any():
        mu, sd = priors.log_a
        total -= float(np.sum(0.5 * ((np.log(est.a[anchors]) - mu) / sd) ** 2))
    return total


def finish(est: ItemEstimates, final: ExpectedCounts, nodes: FloatArray, model: CalibModel, priors: Priors,
           free: np.ndarray, n_responses: np.ndarray, left_out: dict[int, str], iterations: int,
           converged: bool, seconds: float, latent_mean: float = 0.0, latent_sd: float = 1.0,
           trace: list[float] | None = None, covariance: FloatArray | None = None) -> CalibrationResult:
    """The result at the final estimates: standard errors from the observed information
    (:func:`observed_information`) and RMSD from the statistics of a last E-step at ``est``
    with all items informing the posterior and ``information=(model, free)``. ``covariance``:
    the free items' parameters' covariance from a larger information matrix (a joint run's)."""
    k = _param_count(model)
    cov = _covariance(observed_information(est, final, nodes, model, priors, free)) if covariance is None \
        else covariance
    se = [np.full(est.a.size, np.nan) for _ in range(3)]  # b, a, c
    idx = np.flatnonzero(free)
    variances = np.diagonal(cov).reshape(idx.size, k) if idx.size else np.zeros((0, k))
    for j in range(k):
        se[j][idx] = np.sqrt(np.where(variances[:, j] > 0, variances[:, j], np.nan))
    return CalibrationResult(
        model=model, a=est.a, b=est.b, c=est.c, se_a=se[1], se_b=se[0], se_c=se[2],
        n_responses=n_responses, rmsd=_rmsd(est, final.n, final.r, nodes), estimated=free, left_out=left_out,
        log_likelihood=final.log_likelihood, iterations=iterations, converged=converged,
        seconds=seconds, n_persons=final.n_persons,
        latent_mean=latent_mean, latent_sd=latent_sd, objective_trace=trace or [],
        covariance=cov, priors=priors,
    )


@dataclass(frozen=True)
class EMPlan:
    """The settings one EM cycle needs besides the data and the current estimates: what a
    managed calibration job carries from step to step. Latent distribution N(0, 1); plain EM
    (no SQUAREM: each cycle is one pass over the shards)."""

    model: CalibModel = "3PL"
    n_nodes: int = 41
    nodes_kind: Literal["equal", "hermite"] = "equal"
    method: Literal["mem", "oem"] = "mem"
    tol: float = 1e-4
    ll_tol: float = 1e-7
    max_iter: int = 200
    min_responses: int = 30
    priors: Priors | None = None

    def quadrature(self) -> tuple[FloatArray, FloatArray]:
        """Nodes and log prior weights."""
        nodes, weights = quadrature(self.n_nodes, self.nodes_kind)
        return nodes, np.log(weights)

    def resolved_priors(self) -> Priors:
        return self.priors if self.priors is not None else Priors.default(self.model)

    def setup(self, initial: ItemEstimates, n_per_item: np.ndarray,
              fixed: np.ndarray) -> tuple[ItemEstimates, np.ndarray, dict[int, str]]:
        """Starting estimates (model constraints applied), the free items and the items left out
        for too few responses. ``fixed`` marks items held at their ``initial`` values."""
        est = initial.copy()
        if self.model != "3PL":
            est.c[:] = 0.0
        if self.model == "1PL":
            est.a[:] = 1.0
        left_out = {int(i): f"too few responses ({n_per_item[i]} < {self.min_responses})"
                    for i in np.flatnonzero((n_per_item < self.min_responses) & ~fixed)}
        free = ~fixed & (n_per_item >= self.min_responses)
        return est, free, left_out

    def posterior_items(self, fixed: np.ndarray) -> np.ndarray | None:
        """The items that inform the E-step's posterior: all (MEM), the fixed ones only (OEM)."""
        return fixed if (self.method == "oem" and fixed.any()) else None

    def priors_at(self, est: ItemEstimates, free: np.ndarray, fixed: np.ndarray) -> Priors:
        """The priors for an M-step at ``est`` (a floated mean over the free and fixed items)."""
        return self.resolved_priors().floated(est.a[free | fixed])

    def m_step(self, est: ItemEstimates, counts: ExpectedCounts, free: np.ndarray,
               fixed: np.ndarray) -> tuple[ItemEstimates, float]:
        """The M-step on summed expected counts; returns the new estimates and the largest change."""
        nodes, _ = self.quadrature()
        new = _m_step(est, counts.n, counts.r, nodes, self.model, self.priors_at(est, free, fixed), free)
        change = float(np.max(np.abs(new.vector() - est.vector()))) if free.any() else 0.0
        return new, change

    def objective(self, est: ItemEstimates, counts: ExpectedCounts, free: np.ndarray, fixed: np.ndarray) -> float:
        """Log-likelihood (from ``counts``, an E-step at ``est``) plus log prior: what EM climbs."""
        return counts.log_likelihood + log_prior(est, self.priors_at(est, free, fixed), self.model, free, free | fixed)

    def converged(self, change: float, trace: list[float]) -> bool:
        """Largest parameter change below ``tol`` and relative log-likelihood change below
        ``ll_tol`` (as :func:`calibrate`); OEM is one cycle by definition."""
        if self.method == "oem":
            return len(trace) >= 1
        return len(trace) >= 2 and change < self.tol and abs(trace[-1] - trace[-2]) <= self.ll_tol * abs(trace[-1])


def calibrate_sharded(shards: list[ResponseData], initial: ItemEstimates, fixed: np.ndarray,
                      plan: EMPlan, map_: Callable[..., Any] = map,
                      progress: Callable[[int, float, float], None] | None = None) -> CalibrationResult:
    """Bock-Aitkin EM over shards of persons, one cycle at a time: every cycle maps
    :func:`e_step` over the shards (``map_``: e.g. a process pool's ``map``), sums the
    :class:`ExpectedCounts` and runs the M-step. This is the loop the managed calibration job
    runs with a Distributed Map; with one shard it is :func:`calibrate` with ``accelerate=False``.
    Items are indexed alike in every shard; a person must not be split across shards."""
    started = time.perf_counter()
    if not shards:
        raise ValueError("no shards")
    n_items = shards[0].n_items
    n_per_item = np.sum([sh.per_item() for sh in shards], axis=0)
    est, free, left_out = plan.setup(initial, n_per_item, fixed)
    nodes, log_w = plan.quadrature()
    use = plan.posterior_items(fixed)

    def pass_over(cur: ItemEstimates, items: np.ndarray | None, final: bool = False) -> ExpectedCounts:
        total = ExpectedCounts.zeros(n_items, nodes.size)
        information = (plan.model, free) if final else None
        for part in map_(e_step, shards, [cur] * len(shards), [nodes] * len(shards),
                         [log_w] * len(shards), [items] * len(shards), [information] * len(shards)):
            total = total + part
        return total

    trace: list[float] = []
    converged = False
    it = 0
    while it < plan.max_iter:
        counts = pass_over(est, use)
        trace.append(plan.objective(est, counts, free, fixed))
        est, change = plan.m_step(est, counts, free, fixed)
        it += 1
        if progress:
            progress(it, trace[-1], change)
        if plan.converged(change, trace):
            converged = True
            break
    if not converged:
        warnings.warn(f"EM stopped at the iteration cap ({plan.max_iter}) before converging",
                      CalibrationWarning, stacklevel=2)
    final = pass_over(est, None, final=True)
    return finish(est, final, nodes, plan.model, plan.priors_at(est, free, fixed), free, n_per_item, left_out, it,
                  converged, time.perf_counter() - started, trace=trace)


def em_cycle(em: Callable[[Any], tuple[Any, float]], x: Any, vector: Callable[[Any], FloatArray],
             project: Callable[[FloatArray], Any], accelerate: bool) -> tuple[Any, float, int]:
    """One EM cycle from ``x`` and, with ``accelerate``, a SQUAREM step after it
    (:func:`squarem_step`): the next point, the objective at ``x`` and the EM cycles spent."""
    x1, value = em(x)
    if not accelerate:
        return x1, value, 1
    return squarem_step(em, x, x1, vector, project), value, 3


def squarem_step(em: Callable[[Any], tuple[Any, float]], x0: Any, x1: Any, vector: Callable[[Any], FloatArray],
                 project: Callable[[FloatArray], Any]) -> Any:
    """One SQUAREM extrapolation (Varadhan & Roland 2008, scheme S3) around an EM map, with a
    monotone safeguard: from ``x0`` and its EM image ``x1``, take x2 = EM(x1), the step length
    alpha = min(-|r| / |v|, -1) with r = x1 - x0 and v = x2 - 2 x1 + x0, and EM of the
    extrapolated point ``project``ed into the parameter space. The jump is kept when its
    objective is at least that of x1; otherwise x2 (two plain EM cycles). ``em(x)`` returns
    EM(x) and the objective at x. Returns the next point (two more EM cycles spent)."""
    x2, value_x1 = em(x1)
    r = vector(x1) - vector(x0)
    v = vector(x2) - vector(x1) - r
    norm_v = float(np.linalg.norm(v))
    alpha = min(-float(np.linalg.norm(r)) / norm_v if norm_v > 0 else -1.0, -1.0)
    x3, value_jump = em(project(vector(x0) - 2 * alpha * r + alpha**2 * v))
    # x2's objective is not known yet: the jump is kept when it beats x1's, and the next
    # cycle's objective (at x3, or at x2 itself) is what a trace records
    return x3 if value_jump >= value_x1 else x2


def _from_vector(vec: FloatArray, m: int) -> ItemEstimates:
    return ItemEstimates(vec[:m].copy(), vec[m:2 * m].copy(), vec[2 * m:].copy())


def _clip_estimates(est: ItemEstimates, model: CalibModel, free: np.ndarray, base: ItemEstimates) -> ItemEstimates:
    """Keep an extrapolated point inside the parameter space; fixed items keep their values."""
    out = ItemEstimates(np.clip(est.a, *A_BOUNDS), np.clip(est.b, *B_BOUNDS),
                        np.clip(est.c, C_BOUNDS[0] + 1e-4, C_BOUNDS[1]))
    if model != "3PL":
        out.c[:] = 0.0
    if model == "1PL":
        out.a[:] = 1.0
    for arr, ref in ((out.a, base.a), (out.b, base.b), (out.c, base.c)):
        arr[~free] = ref[~free]
    return out


def _update_latent(
    mass: FloatArray, nodes: FloatArray, latent: Latent, anchored: bool
) -> tuple[FloatArray, float, float]:
    """New log prior weights from the posterior mass at each node (summed over persons)."""
    mass = mass / mass.sum()
    mean = float(mass @ nodes)
    sd = float(np.sqrt(max(float(mass @ (nodes - mean) ** 2), 1e-6)))
    if latent == "normal":
        if not anchored:
            return np.log(np.exp(-0.5 * nodes**2) / np.exp(-0.5 * nodes**2).sum()), 0.0, 1.0
        g = np.exp(-0.5 * ((nodes - mean) / sd) ** 2)
        return np.log(g / g.sum()), mean, sd
    # empirical histogram; without anchors the scale is set by standardising it
    if not anchored:
        z = (nodes - mean) / sd
        mass = np.interp(nodes, z, mass, left=0.0, right=0.0)
        mass = np.maximum(mass, 1e-12)
        mass /= mass.sum()
        mean, sd = 0.0, 1.0
    out: FloatArray = np.log(np.maximum(mass, 1e-300))
    return out, mean, sd


def _rmsd(est: ItemEstimates, n: FloatArray, r: FloatArray, nodes: FloatArray) -> FloatArray:
    """sqrt(sum_q f_iq (r_iq / n_iq - P_i(t_q))^2) with f_iq = n_iq / sum_q n_iq."""
    p = _prob(est, nodes)
    total = np.maximum(n.sum(axis=1, keepdims=True), EPS)
    f = n / total
    obs = np.where(n > EPS, r / np.maximum(n, EPS), p)
    out: FloatArray = np.sqrt(np.sum(f * (obs - p) ** 2, axis=1))
    return out


def promote(result: CalibrationResult, pretest: np.ndarray, max_se_b: float = 0.3,
            min_responses: int = 500, max_rmsd: float = 0.1) -> dict[int, str]:
    """Which pretest items become operational, and why each other one does not.

    An estimated pretest item is promoted when SE(b) <= ``max_se_b``, it has at least
    ``min_responses`` responses, its RMSD is at most ``max_rmsd`` and the run converged.
    Returns item index -> "promoted" or the reason it stays a pretest item.
    """
    return promotion_decisions(pretest, result.n_responses, result.se_b, result.rmsd, result.converged,
                               result.left_out, max_se_b, min_responses, max_rmsd)


def promotion_decisions(pretest: np.ndarray, n_responses: np.ndarray, se_b: FloatArray, rmsd: FloatArray,
                        converged: bool, left_out: dict[int, str], max_se_b: float, min_responses: int,
                        max_rmsd: float, se_label: str = "SE(b)") -> dict[int, str]:
    """The gates of :func:`promote` on plain arrays (a partial-credit item's ``se_b`` is the
    largest SE of its thresholds, ``se_label`` naming it)."""
    decisions: dict[int, str] = {}
    for i in map(int, np.flatnonzero(pretest)):
        if i in left_out:
            decisions[i] = left_out[i]
        elif not converged:
            decisions[i] = "calibration did not converge"
        elif n_responses[i] < min_responses:
            decisions[i] = f"n_responses {n_responses[i]} < {min_responses}"
        elif not se_b[i] <= max_se_b:
            decisions[i] = f"{se_label} {se_b[i]:.3f} > {max_se_b}"
        elif rmsd[i] > max_rmsd:
            decisions[i] = f"RMSD {rmsd[i]:.3f} > {max_rmsd}"
        else:
            decisions[i] = "promoted"
    return decisions
