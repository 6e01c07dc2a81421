"""What every calibration shares: the responses (right/wrong and partial-credit, as sparse
person x item matrices), the quadrature, the posterior over its nodes and the E-step's
sufficient statistics (:class:`ExpectedCounts`, which add up over shards of persons)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import sparse

from ..model import FloatArray

CalibModel = Literal["1PL", "2PL", "3PL"]
StartMethod = Literal["pairwise", "pvalue", "flat"]
Latent = Literal["fixed", "normal", "histogram"]
NodesKind = Literal["equal", "hermite"]

A_BOUNDS = (0.05, 6.0)
B_BOUNDS = (-6.0, 6.0)
C_BOUNDS = (0.0, 0.5)
EPS = 1e-10


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
        # cheaper than np.unique's hash path on large inputs)
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


def posterior(log_post: FloatArray) -> tuple[FloatArray, float]:
    """Normalised posterior weights and the marginal log-likelihood. ``log_post`` must be a
    temporary: it is overwritten by the weights (one array pass fewer per E-step)."""
    m = log_post.max(axis=1, keepdims=True)
    log_post -= m
    np.exp(log_post, out=log_post)
    total = log_post.sum(axis=1, keepdims=True)
    ll = float(np.sum(np.log(total) + m))
    log_post /= total
    return log_post, ll


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
    # on the final pass: the fixed partial-credit items' expected category counts too, (items x
    # width) x nodes in the run's item order (what the drift check re-estimates them from)
    fixed_categories: FloatArray | None = None

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
                              _add_optional(self.categories, other.categories, empty, "category counts"),
                              _add_optional(self.fixed_categories, other.fixed_categories, empty,
                                            "fixed items' category counts"))

    def to_bytes(self) -> bytes:
        """A compact binary form (``numpy.savez``) for moving shard results through storage."""
        buf = io.BytesIO()
        arrays: dict[str, Any] = {"n": self.n, "r": self.r, "mass": self.mass,
                                  "scalars": np.array([self.log_likelihood, float(self.n_persons)])}
        for name in ("score_products", "categories", "fixed_categories"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        np.savez(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, raw: bytes) -> ExpectedCounts:
        with np.load(io.BytesIO(raw)) as z:
            ll, persons = z["scalars"]
            optional = {name: z[name] if name in z.files else None
                        for name in ("score_products", "categories", "fixed_categories")}
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



@dataclass
class CategoryData:
    """Long-format category responses and their indicator matrix."""

    person: np.ndarray
    item: np.ndarray
    category: np.ndarray
    n_persons: int
    n_items: int
    categories: np.ndarray  # per item: highest category + 1
    indicator: sparse.csr_matrix = field(init=False, repr=False)  # persons x (items * width)

    def __post_init__(self) -> None:
        width = int(self.categories.max())
        cols = self.item * width + self.category
        self.indicator = sparse.csr_matrix((np.ones(self.person.size), (self.person, cols)),
                                           shape=(self.n_persons, self.n_items * width))

    @classmethod
    def from_long(cls, person: np.ndarray, item: np.ndarray, category: np.ndarray,
                  n_persons: int | None = None, n_items: int | None = None,
                  item_ids: list[str] | None = None, categories: np.ndarray | None = None) -> CategoryData:
        """Index arrays to data. ValueError on a negative or non-integer category, a repeated
        person-item pair, an item with a single category, or a category below an item's highest
        that nobody answered in (the items and categories named). ``categories``: each item's
        number of categories as its bank entry states (every one must then be observed);
        default: up to the highest observed."""
        person = np.asarray(person, dtype=np.int64)
        item = np.asarray(item, dtype=np.int64)
        raw = np.asarray(category)
        if not (person.shape == item.shape == raw.shape) or person.size == 0:
            raise ValueError("person, item and category need the same, non-zero length")
        if np.any(raw < 0) or np.any(raw != np.round(raw)):
            raise ValueError("categories must be whole numbers 0, 1, 2, ...")
        cat = raw.astype(np.int64)
        n_p = int(person.max()) + 1 if n_persons is None else n_persons
        n_i = int(item.max()) + 1 if n_items is None else n_items
        key = person * n_i + item
        if np.unique(key).size != key.size:
            raise ValueError("duplicate person-item responses")
        names = item_ids or [str(j) for j in range(n_i)]
        problems = [f"{names[j]}: {why}" for j, why in cls.unusable(item, cat, n_i, categories).items()]
        if problems:
            shown = "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else "")
            raise ValueError(f"{len(problems)} item(s) cannot be calibrated: {shown}. A threshold needs answers "
                             "in the categories on both sides: collect more responses or merge the categories")
        if categories is not None:
            return cls(person, item, cat, n_p, n_i, np.asarray(categories, dtype=np.int64))
        highest = np.full(n_i, -1)
        np.maximum.at(highest, item, cat)
        return cls(person, item, cat, n_p, n_i, highest + 1)

    @staticmethod
    def unusable(item: np.ndarray, category: np.ndarray, n_items: int, categories: np.ndarray | None = None,
                 min_responses: int = 0) -> dict[int, str]:
        """The items whose thresholds the responses cannot identify, and why: no responses,
        only category 0, a category nobody answered in below the highest observed, (given each
        item's ``categories``) any of its categories never observed or one above them, or
        fewer than ``min_responses`` responses."""
        highest = np.full(n_items, -1)
        np.maximum.at(highest, item, category)
        top = highest if categories is None else np.asarray(categories, dtype=np.int64) - 1
        counts = np.zeros((n_items, max(int(top.max()), int(highest.max()), 0) + 1), dtype=np.int64)
        np.add.at(counts, (item, category), 1)
        out: dict[int, str] = {}
        for j in range(n_items):
            if highest[j] < 1:
                out[j] = "no responses" if highest[j] < 0 else "only category 0"
                continue
            if categories is not None and highest[j] > top[j]:
                out[j] = f"category {highest[j]} answered, but the item has categories 0..{top[j]}"
                continue
            missing = [k for k in range(top[j] + 1) if counts[j, k] == 0]
            if missing:
                out[j] = (f"category {', '.join(map(str, missing))} never observed (observed up to "
                          f"{highest[j]}{'' if categories is None else f' of {top[j]}'})")
            elif counts[j].sum() < min_responses:
                out[j] = f"too few responses ({counts[j].sum()} < {min_responses})"
        return out


