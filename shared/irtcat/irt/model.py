"""Item response functions and Fisher information for the 1PL-4PL logistic models.

The four-parameter logistic model (Barton & Lord 1981) contains the others as special cases::

    P(theta) = c + (d - c) / (1 + exp(-D a (theta - b)))

1PL/Rasch: a = 1, c = 0, d = 1; 2PL: c = 0, d = 1; 3PL: d = 1. ``D`` is 1 (logistic metric,
the default) or 1.702 (approximates the normal ogive). All functions broadcast: pass ``theta``
with shape ``(n, 1)`` and item arrays of shape ``(m,)`` to get an ``(n, m)`` result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Model = Literal["1PL", "2PL", "3PL", "4PL"]
FloatArray = NDArray[np.float64]

D_LOGISTIC = 1.0
D_NORMAL = 1.702
# Probabilities are kept inside (EPS, 1 - EPS) so that logs and information stay finite.
EPS = 1e-9


@dataclass(frozen=True)
class ItemParameters:
    """Struct-of-arrays view of a bank's parameters (one entry per item)."""

    a: FloatArray
    b: FloatArray
    c: FloatArray
    d: FloatArray
    scale: float = D_LOGISTIC

    @classmethod
    def from_arrays(
        cls,
        a: ArrayLike | None = None,
        b: ArrayLike = 0.0,
        c: ArrayLike | None = None,
        d: ArrayLike | None = None,
        scale: float = D_LOGISTIC,
    ) -> ItemParameters:
        """Build parameters; missing a/c/d default to 1/0/1 (so ``b`` alone is a Rasch bank)."""
        b_arr = np.atleast_1d(np.asarray(b, dtype=np.float64))
        n = b_arr.shape[0]

        def fill(x: ArrayLike | None, default: float) -> FloatArray:
            if x is None:
                return np.full(n, default)
            arr = np.atleast_1d(np.asarray(x, dtype=np.float64))
            return np.broadcast_to(arr, (n,)).copy()

        params = cls(fill(a, 1.0), b_arr.copy(), fill(c, 0.0), fill(d, 1.0), float(scale))
        params.validate()
        return params

    def validate(self) -> None:
        """Raise ``ValueError`` with a reason when a parameter is outside its domain."""
        arrays = {"a": self.a, "b": self.b, "c": self.c, "d": self.d}
        for name, arr in arrays.items():
            if arr.shape != self.b.shape:
                raise ValueError(f"parameter {name} has shape {arr.shape}, expected {self.b.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"parameter {name} has non-finite values")
        if np.any(self.a <= 0):
            raise ValueError("discrimination a must be > 0")
        if np.any((self.c < 0) | (self.c >= 1)):
            raise ValueError("guessing c must be in [0, 1)")
        if np.any((self.d <= self.c) | (self.d > 1)):
            raise ValueError("upper asymptote d must be in (c, 1]")
        if self.scale <= 0:
            raise ValueError("scaling constant D must be > 0")

    def __len__(self) -> int:
        return int(self.b.shape[0])

    def astype(self, dtype: type[np.floating[Any]]) -> ItemParameters:
        """A copy in another float type (float32 halves the cost of ranking items)."""
        return ItemParameters(
            self.a.astype(dtype), self.b.astype(dtype), self.c.astype(dtype),
            self.d.astype(dtype), self.scale,
        )

    def expanded(self, shape: tuple[int, ...]) -> ItemParameters:
        """These (flat) parameters reshaped to ``shape`` plus a trailing axis, to broadcast
        against a grid of thetas."""
        return ItemParameters(self.a.reshape(*shape, 1), self.b.reshape(*shape, 1), self.c.reshape(*shape, 1),
                              self.d.reshape(*shape, 1), self.scale)

    def subset(self, index: ArrayLike) -> ItemParameters:
        """The parameters of the items at ``index`` (same order)."""
        idx = np.asarray(index, dtype=np.intp)
        return ItemParameters(self.a[idx], self.b[idx], self.c[idx], self.d[idx], self.scale)


def _logistic(z: FloatArray) -> FloatArray:
    # exp(-z) overflows to inf for z < -709, which still gives 0 correctly; silence the warning.
    with np.errstate(over="ignore"):
        out: FloatArray = 1.0 / (1.0 + np.exp(-z))
    return out


def prob(theta: ArrayLike, items: ItemParameters) -> FloatArray:
    """P(X = 1 | theta) for every (theta, item) pair (broadcast), clipped to (EPS, 1 - EPS)."""
    t = np.asarray(theta, dtype=np.float64)
    p = items.c + (items.d - items.c) * _logistic(items.scale * items.a * (t - items.b))
    return np.clip(p, EPS, 1.0 - EPS)


def prob_derivatives(theta: ArrayLike, items: ItemParameters) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return ``(P, P', P'')`` with respect to theta.

    With s = logistic(D a (theta - b)): P' = (d - c) D a s (1 - s) and
    P'' = (d - c) (D a)^2 s (1 - s) (1 - 2 s).
    """
    t = np.asarray(theta, dtype=np.float64)
    da = items.scale * items.a
    s = _logistic(da * (t - items.b))
    span = items.d - items.c
    p = np.clip(items.c + span * s, EPS, 1.0 - EPS)
    ds = s * (1.0 - s)
    return p, span * da * ds, span * da * da * ds * (1.0 - 2.0 * s)


def information(theta: ArrayLike, items: ItemParameters) -> FloatArray:
    """Fisher information of each item at theta.

    I(theta) = P'^2 / (P (1 - P)); for the 4PL this is
    (D a)^2 (d - c)^2 s^2 (1 - s)^2 / (P (1 - P)) with s = logistic(D a (theta - b))
    (Magis 2013, eq. 5). Written with in-place operations: this is the selection hot path.
    Computed in the items' float type, so float32 parameters give a float32 result.
    """
    t = np.asarray(theta, dtype=items.b.dtype)
    da = items.b.dtype.type(items.scale) * items.a
    span = items.d - items.c
    s = np.multiply(da, t - items.b)
    np.negative(s, out=s)
    with np.errstate(over="ignore"):
        np.exp(s, out=s)
    s += 1
    np.reciprocal(s, out=s)  # s = logistic(z)
    p = span * s
    p += items.c  # P
    s *= 1.0 - s  # s(1 - s)
    s *= s
    s *= (da * span) ** 2  # P'^2
    p *= 1.0 - p
    np.maximum(p, items.b.dtype.type(EPS), out=p)
    s /= p
    return s


def log_likelihood_table(items: ItemParameters, nodes: FloatArray) -> FloatArray:
    """log P(X = x | node) for every item, response and node: shape ``(items, 2, nodes)``.

    Precomputed once per bank so that an EAP update after one more answer is one vector add.
    """
    p = prob(nodes[None, :], ItemParameters(
        items.a[:, None], items.b[:, None], items.c[:, None], items.d[:, None], items.scale
    ))
    return np.stack([np.log1p(-p), np.log(p)], axis=1)
