"""The state of adaptive tests in progress: a bank as arrays (with its caches) and one row per
examinee. Every rule of :mod:`.cat`, :mod:`.selection` and :mod:`.stopping` works on these, for
one examinee (the live per-answer path) or thousands at once (the simulator)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import CatConfig
from .criteria import PeakIndex, b_blocked_strata, max_information
from .estimation import Quadrature
from .model import FloatArray, ItemParameters, log_likelihood_table, prob, prob_derivatives
from .polytomous import PolytomousItems, category_probabilities, paired_derivatives
from .polytomous import information as polytomous_information
from .polytomous import log_likelihood_table as polytomous_log_likelihood_table

OPERATIONAL, PRETEST, RETIRED = 0, 1, 2
STATUS_CODES = {"operational": OPERATIONAL, "pretest": PRETEST, "retired": RETIRED}


class Bank:
    """A bank's parameters and metadata as arrays, with per-quadrature caches.

    Build one per bank version and keep it for the life of the process (the Lambda container).
    A mixed bank also has partial-credit items: ``poly`` holds their parameters and
    ``poly_index`` their positions (their entries in ``params`` are placeholders); their
    information and log-likelihood come from :mod:`.polytomous`. On a mixed bank every
    estimator (through :class:`MixedPattern`), max-info and KL selection and every stopping rule
    work; a-stratification says it needs right/wrong items (:meth:`require_dichotomous`).
    Exposure control reads ``exposure_k`` (Sympson-Hetter parameters) and ``exposure_price``
    (allocation prices in information units, :mod:`.exposure`).
    """

    def __init__(
        self,
        params: ItemParameters,
        status: np.ndarray | None = None,
        content: list[str] | None = None,
        exposure_k: FloatArray | None = None,
        item_ids: list[str] | None = None,
        poly: PolytomousItems | None = None,
        poly_index: np.ndarray | None = None,
        exposure_price: np.ndarray | None = None,
    ) -> None:
        n = len(params)
        self.params = params
        self.poly = poly if poly is not None and len(poly) else None
        self.poly_index = (np.asarray(poly_index, dtype=np.int64) if self.poly is not None and poly_index is not None
                           else np.zeros(0, dtype=np.int64))
        if self.poly is not None and (self.poly_index.size != len(self.poly) or np.any(self.poly_index >= n)
                                      or np.any(np.diff(self.poly_index) <= 0)):
            raise ValueError("poly_index must give one increasing bank position per partial-credit item")
        self.status = np.zeros(n, dtype=np.int8) if status is None else np.asarray(status, np.int8)
        areas = content if content is not None else [""] * n
        self.area_names = sorted(set(areas))
        self.area = np.array([self.area_names.index(x) for x in areas], dtype=np.int64)
        self.exposure_k = np.ones(n) if exposure_k is None else np.asarray(exposure_k, np.float64)
        self.exposure_price = (np.zeros(n, np.float32) if exposure_price is None
                               else np.asarray(exposure_price, np.float32))
        self.priced = bool(np.any(self.exposure_price > 0))
        self.item_ids = item_ids if item_ids is not None else [f"i{j:05d}" for j in range(n)]
        self.index = {item_id: j for j, item_id in enumerate(self.item_ids)}
        if len(self.index) != n:
            raise ValueError("item ids must be unique")
        if not (self.status.shape == self.area.shape == self.exposure_k.shape == self.exposure_price.shape == (n,)):
            raise ValueError("status, content and exposure arrays must have one entry per item")
        self.operational = self.status == OPERATIONAL
        self.pretest = self.status == PRETEST
        # float32 copy for ranking items: twice as fast, and ranks don't need float64
        self.params32 = params.astype(np.float32)
        # items by decreasing peak information, for the exact pruned max-info scan (d = 1 only)
        self.prunable = bool(np.all(params.d == 1.0)) and self.poly is None
        self.peak_index = PeakIndex.build(params) if self.prunable and n > 1000 else None
        self._tables: dict[Quadrature, FloatArray] = {}
        self._poly_grid: np.ndarray | None = None
        self._strata: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.params)

    def loglik_table(self, quadrature: Quadrature) -> FloatArray:
        """Cached ``log P(x | node)`` table, shape (items, categories, nodes): 2 categories on a
        right/wrong bank; on a mixed bank as many as its widest item has (an item's missing
        categories are never indexed)."""
        table = self._tables.get(quadrature)
        if table is None:
            table = log_likelihood_table(self.params, quadrature.nodes)
            if self.poly is not None:
                poly = polytomous_log_likelihood_table(self.poly, quadrature.nodes)
                width = max(2, poly.shape[1])
                table = np.concatenate([table, np.full((len(self), width - 2, table.shape[2]), -np.inf)], axis=1)
                table[self.poly_index] = -np.inf
                table[self.poly_index, :poly.shape[1]] = poly
            self._tables[quadrature] = table
        return table

    def poly_positions(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For bank positions ``index`` (any shape): each one's position among the partial-credit
        items (clipped into range) and whether it is one."""
        idx = np.asarray(index, dtype=np.int64)
        if self.poly is None:
            return np.zeros_like(idx), np.zeros(idx.shape, dtype=bool)
        pos = np.minimum(np.searchsorted(self.poly_index, idx), self.poly_index.size - 1)
        return pos, self.poly_index[pos] == idx

    def categories(self) -> np.ndarray:
        """Number of score categories of each item (2 for a right/wrong one)."""
        out = np.full(len(self), 2, dtype=np.int64)
        if self.poly is not None:
            out[self.poly_index] = self.poly.categories
        return out

    def answers_log_likelihood(self, person: np.ndarray, item: np.ndarray, response: np.ndarray, n_persons: int,
                               quadrature: Quadrature) -> FloatArray:
        """sum over each person's answers of log P(x | node): (persons, nodes). ValueError when a
        response is not one of its item's categories."""
        bad = (response < 0) | (response >= self.categories()[item])
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(f"response {int(response[k])} to item {self.item_ids[int(item[k])]} is not one of "
                             f"its categories 0..{int(self.categories()[item[k]]) - 1}")
        out = np.zeros((n_persons, quadrature.n))
        np.add.at(out, person, self.loglik_table(quadrature)[item, response])
        return out

    def pattern_log_likelihood(self, items: np.ndarray, x: FloatArray, grid: FloatArray) -> FloatArray:
        """sum over each row's scored items of log P(x | g), right/wrong and partial-credit items
        alike: ``items`` (rows, k) padded with -1, ``x`` padded with NaN; shape (rows, grid)."""
        mask = items >= 0
        idx = np.maximum(items, 0)
        xi = np.nan_to_num(x).astype(np.int64)
        p = prob(grid[None, None, :], self.params.subset(idx.ravel()).expanded(idx.shape))  # (rows, k, g)
        ll = np.where(xi[..., None] == 1, np.log(p), np.log1p(-p))
        if self.poly is not None:
            pos, is_poly = self.poly_positions(idx)
            probs = category_probabilities(grid, self.poly)  # (g, n_poly, K)
            pk = probs[:, pos, np.minimum(xi, probs.shape[2] - 1)]  # (g, rows, k)
            ll = np.where(is_poly[..., None], np.log(np.maximum(np.moveaxis(pk, 0, -1), 1e-300)), ll)
        out: FloatArray = np.where(mask[..., None], ll, 0.0).sum(axis=1)
        return out

    def information(self, theta: FloatArray) -> FloatArray:
        """Fisher information of every item at each theta, (n, items), in float32 (ranking only).
        A partial-credit item's is interpolated linearly in a table at 0.01 steps on [-6, 6]
        (built once; relative error below 1e-4), which keeps selection on a mixed bank cheap."""
        out = max_information(theta, self.params32)
        if self.poly is not None:
            grid = self._poly_information_grid()
            pos = (np.clip(np.asarray(theta, dtype=np.float64), -6.0, 6.0) + 6.0) / 0.01
            lo = np.minimum(pos.astype(np.int64), grid.shape[0] - 2)
            w = (pos - lo).astype(np.float32)[:, None]
            out[:, self.poly_index] = grid[lo] * (1 - w) + grid[lo + 1] * w
        return out

    def _poly_information_grid(self) -> np.ndarray:
        if self._poly_grid is None:
            assert self.poly is not None
            self._poly_grid = polytomous_information(np.linspace(-6.0, 6.0, 1201), self.poly).astype(np.float32)
        return self._poly_grid

    def require_dichotomous(self, what: str) -> None:
        """ValueError when this bank has partial-credit items, which ``what`` cannot handle."""
        if self.poly is not None:
            raise ValueError(f"{what} works on right/wrong items only, and this bank has {len(self.poly)} "
                             "partial-credit item(s): use max_info or kl selection")

    def with_exposure_k(self, exposure_k: FloatArray, exposure_price: np.ndarray | None = None) -> Bank:
        """The same bank with other Sympson-Hetter parameters (and allocation prices, when given)."""
        price = self.exposure_price if exposure_price is None else exposure_price
        return Bank(self.params, self.status, [self.area_names[a] for a in self.area], exposure_k, self.item_ids,
                    self.poly, self.poly_index, price)

    def strata(self, n_strata: int) -> np.ndarray:
        """Cached a-stratified/b-blocked stratum per item (-1 for non-operational items)."""
        self.require_dichotomous("a-stratification")
        s = self._strata.get(n_strata)
        if s is None:
            s = self._strata[n_strata] = b_blocked_strata(
                self.params.a, self.params.b, self.operational, n_strata
            )
        return s


@dataclass
class CatState:
    """Rows of examinees in the middle of an adaptive test."""

    theta: FloatArray
    se: FloatArray
    theta_before: FloatArray
    log_post: FloatArray  # (n, nodes): log prior + log likelihood of the scored answers
    administered: np.ndarray  # (n, items) bool: every item served, pretest included
    blocked: np.ndarray  # (n, items) bool: lost a Sympson-Hetter lottery in this test
    scored_items: np.ndarray  # (n, max_items) int, -1 padded
    scored_resp: FloatArray  # (n, max_items) float, NaN padded
    n_scored: np.ndarray
    n_served: np.ndarray
    area_counts: np.ndarray  # (n, areas) scored items per content area
    # shadow-test selection (irt.shadow), per row: the last shadow test (a starting solution for
    # the next) and the blueprint rules that had to give way, with by how much (the most so far)
    shadow: dict[int, np.ndarray] = field(default_factory=dict)
    relaxed: dict[int, dict[str, float]] = field(default_factory=dict)
    # item eligibility under a shadow test's exposure control (irt.exposure.draw_ineligible),
    # per row: the items this examinee's draw made ineligible for the whole test
    ineligible: dict[int, np.ndarray] = field(default_factory=dict)

    @classmethod
    def start(
        cls, n: int, bank: Bank, config: CatConfig, theta0: FloatArray | None = None
    ) -> CatState:
        """Fresh state: theta from ``theta0`` (e.g. the student's last ability) or the prior."""
        prior = config.prior
        log_prior = config.quadrature.log_prior(prior)
        theta = np.full(n, prior.mean) if theta0 is None else np.asarray(theta0, np.float64).copy()
        return cls(
            theta=theta,
            se=np.full(n, prior.sd),
            theta_before=theta.copy(),
            log_post=np.tile(log_prior, (n, 1)),
            administered=np.zeros((n, len(bank)), dtype=bool),
            blocked=np.zeros((n, len(bank)), dtype=bool),
            scored_items=np.full((n, config.max_items), -1, dtype=np.int64),
            scored_resp=np.full((n, config.max_items), np.nan),
            n_scored=np.zeros(n, dtype=np.int64),
            n_served=np.zeros(n, dtype=np.int64),
            area_counts=np.zeros((n, len(bank.area_names)), dtype=np.int64),
        )


def pattern_items(state: CatState, bank: Bank, rows: np.ndarray) -> ItemParameters | MixedPattern:
    """The parameters of each row's scored items, in answer order (padding: item 0); on a mixed
    bank, a :class:`MixedPattern` that the estimators ask for scores and likelihoods."""
    if bank.poly is not None:
        return MixedPattern(bank, state.scored_items[rows])
    idx = np.maximum(state.scored_items[rows], 0)
    p = bank.params
    return ItemParameters(p.a[idx], p.b[idx], p.c[idx], p.d[idx], p.scale)


@dataclass
class MixedPattern:
    """Rows of scored items (-1 padded) on a mixed bank, for MAP, MLE and WLE: per row the score
    S = sum d log P(x | theta) / d theta, the test information and Warm's
    J = sum_k P_k' P_k'' / P_k (Samejima 1998 for partial-credit items), and the pattern
    log-likelihood on a grid."""

    bank: Bank
    items: np.ndarray

    def score_terms(self, theta: FloatArray, x: FloatArray, mask: np.ndarray
                    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        bank, idx = self.bank, np.maximum(self.items, 0)
        assert bank.poly is not None
        pos, is_poly = bank.poly_positions(idx)
        pr = bank.params
        p, dp, d2p = prob_derivatives(theta[:, None], ItemParameters(pr.a[idx], pr.b[idx], pr.c[idx], pr.d[idx],
                                                                      pr.scale))
        pq = p * (1.0 - p)
        right_wrong = mask & ~is_poly
        score = np.where(right_wrong, (x - p) * dp / pq, 0.0).sum(axis=1)
        info = np.where(right_wrong, dp * dp / pq, 0.0).sum(axis=1)
        j = np.where(right_wrong, dp * d2p / pq, 0.0).sum(axis=1)
        r, c = np.nonzero(mask & is_poly)
        if r.size:
            items = bank.poly.subset(pos[r, c])
            pk, dpk, d2pk = paired_derivatives(theta[r], items)
            valid = np.arange(pk.shape[1])[None, :] < items.categories[:, None]
            safe = np.maximum(pk, 1e-300)
            xk = x[r, c].astype(np.int64)
            np.add.at(score, r, dpk[np.arange(r.size), xk] / safe[np.arange(r.size), xk])
            np.add.at(info, r, np.where(valid, dpk * dpk / safe, 0.0).sum(axis=1))
            np.add.at(j, r, np.where(valid, dpk * d2pk / safe, 0.0).sum(axis=1))
        return score, info, j

    def log_likelihood(self, x: FloatArray, mask: np.ndarray, grid: FloatArray) -> FloatArray:
        return self.bank.pattern_log_likelihood(np.where(mask, self.items, -1), np.where(mask, x, np.nan), grid)


def eligible_operational(state: CatState, bank: Bank, rows: np.ndarray) -> np.ndarray:
    """Operational items not yet served and not blocked, per row: (rows, items) bool."""
    out: np.ndarray = bank.operational[None, :] & ~state.administered[rows] & ~state.blocked[rows]
    return out
