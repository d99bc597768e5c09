"""Normalisations, WSM, TOPSIS and AHP on arrays; every function also works on a stack of draws.

Arrays hold options along axis ``-2`` and criteria along axis ``-1``, so one call scores a single matrix
``(m, n)`` or ten thousand Monte Carlo draws ``(d, m, n)`` with no Python loop over draws.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mlplat.errors import ConfigError

__all__ = ["AhpResult", "ahp", "normalize", "topsis", "wsm"]

FloatArray = NDArray[np.float64]

# Saaty's random consistency index for n = 1..15 (Saaty 1980, table 1.7; Alonso & Lamata 2006 agree to 2 dp).
RANDOM_INDEX = (0.0, 0.0, 0.58, 0.90, 1.12, 1.24, 1.32, 1.41, 1.45, 1.49, 1.51, 1.48, 1.56, 1.57, 1.59)
CR_LIMIT = 0.10
NORMALIZATIONS = ("minmax", "vector", "sum", "max")


@dataclass(frozen=True)
class AhpResult:
    """Weights from a pairwise comparison matrix, with Saaty's consistency figures."""

    weights: tuple[float, ...]
    lambda_max: float
    ci: float
    cr: float

    @property
    def consistent(self) -> bool:
        """Saaty's rule of thumb: a consistency ratio up to 0.10 is acceptable."""
        return self.cr <= CR_LIMIT

    def to_dict(self) -> dict[str, Any]:
        return {"lambda_max": self.lambda_max, "ci": self.ci, "cr": self.cr, "consistent": self.consistent}

    def __rich__(self) -> str:
        return f"AHP: λmax {self.lambda_max:.4f}, CI {self.ci:.4f}, CR {self.cr:.4f}"


def ahp(matrix: ArrayLike) -> AhpResult:
    """Criterion weights from a reciprocal pairwise comparison matrix (principal eigenvector).

    Parameters
    ----------
    matrix : array_like, shape (n, n)
        Saaty judgements: ``matrix[i, j]`` says how much more important criterion ``i`` is than ``j``
        (1 equal ... 9 extreme), with ``matrix[j, i] == 1 / matrix[i, j]``.

    Returns
    -------
    AhpResult
        ``weights`` (summing to 1), ``lambda_max``, ``ci = (lambda_max - n) / (n - 1)`` and
        ``cr = ci / RI(n)`` with Saaty's random index; ``consistent`` is ``cr <= 0.10``.

    Raises
    ------
    ConfigError
        If ``matrix`` is not a square, non-empty table of numbers, or a judgement is not finite and > 0.

    References
    ----------
    .. [1] T. L. Saaty, *The Analytic Hierarchy Process*, McGraw-Hill, 1980.

    Examples
    --------
    >>> r = ahp([[1, 3], [1 / 3, 1]])
    >>> [round(w, 2) for w in r.weights], round(r.cr, 6)
    ([0.75, 0.25], 0.0)
    >>> ahp([[1, 3, 9], [1 / 3, 1, 1], [1 / 9, 1, 1]]).consistent  # 1 over 2 is 3, 2 over 3 should be 3 too
    False
    """
    try:
        a = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError) as exc:  # ragged rows, text
        raise ConfigError(f"an AHP matrix must be a square table of numbers: {exc}") from None
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise ConfigError(f"an AHP matrix must be square and non-empty, got shape {a.shape}")
    bad = ~np.isfinite(a) | (a <= 0)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ConfigError(f"AHP judgements must be finite and > 0, got {a[i, j]:g} in row {i + 1}, column {j + 1}")
    n = a.shape[0]
    values, vectors = np.linalg.eig(a)
    k = int(np.argmax(values.real))
    lambda_max = float(values[k].real)
    vector = np.abs(vectors[:, k].real)
    weights = vector / vector.sum()
    ci = (lambda_max - n) / (n - 1) if n > 2 else 0.0
    ri = RANDOM_INDEX[n - 1] if n <= len(RANDOM_INDEX) else RANDOM_INDEX[-1]
    cr = ci / ri if ri > 0 else 0.0
    return AhpResult(tuple(float(w) for w in weights), lambda_max, float(ci), float(cr))


#: Values within this share of a column's largest magnitude are equal: two TCOs of the same amount can come
#: out of their cash flows an ulp apart (0.0003 x 1.2e9 is 359999.99999999994), and min-max would stretch
#: that ulp to a full 0-to-1 spread that decides the winner.
EQUAL_SHARE = 1e-9


def _constant(x: FloatArray) -> NDArray[np.bool_]:
    """Columns (per draw) where every option has the same value, up to rounding: they cannot separate options."""
    spread = np.ptp(x, axis=-2, keepdims=True)
    return np.isfinite(spread) & (spread <= EQUAL_SHARE * np.abs(x).max(axis=-2, keepdims=True))


def check_normalization(name: str) -> None:
    """ConfigError unless ``name`` is one of ``NORMALIZATIONS`` (checked before any work, not when scoring)."""
    if name not in NORMALIZATIONS:
        raise ConfigError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {name!r}")


def normalize(matrix: ArrayLike, cost: ArrayLike, method: str = "minmax") -> FloatArray:
    """Turn raw scores into benefit-oriented values in [0, 1] (higher is better), column by column.

    With ``cost[j]`` true, lower raw values are better in column ``j``. ``minmax``: ``(x - min) / (max - min)``
    (cost: ``(max - x) / (max - min)``); ``vector``: ``x / ||x||`` (cost: ``1 - x / ||x||``); ``sum``:
    ``x / sum(x)`` (cost: ``(1/x) / sum(1/x)``); ``max``: ``x / max|x|`` (cost: ``1 - x / max|x|``).
    These are the formulas of pymcdm 1.4 (for ``max``, when no score is negative). A column whose values
    are all equal (within 1e-9 of its largest magnitude: rounding in a TCO is not a difference) becomes all
    ones under ``minmax``.

    Parameters
    ----------
    matrix : array_like, shape (..., m, n)
        Raw scores: options on axis -2, criteria on axis -1 (leading axes are draws).
    cost : array_like of bool, shape (n,)
        True where lower is better.
    method : {"minmax", "vector", "sum", "max"}
        The normalisation (default ``minmax``).

    Returns
    -------
    numpy.ndarray
        The shape of ``matrix``, higher is better. Values lie in [0, 1] under ``minmax`` and ``sum``, and
        under ``vector`` and ``max`` when no score is negative.

    Raises
    ------
    ConfigError
        If ``method`` is unknown, or under ``sum`` a cost score is <= 0 or a benefit score is < 0.

    References
    ----------
    .. [1] C.-L. Hwang and K. Yoon, *Multiple Attribute Decision Making: Methods and Applications*,
       Springer, 1981.
    .. [2] pymcdm 1.4 (the normalisation formulas).

    Examples
    --------
    >>> normalize([[1.0, 10.0], [3.0, 30.0]], cost=[False, True]).tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    >>> normalize([[1.0, 2.0], [3.0, 2.0]], cost=[False, True], method="sum").tolist()
    [[0.25, 0.5], [0.75, 0.5]]
    """
    check_normalization(method)
    x = np.asarray(matrix, dtype=float)
    c = np.asarray(cost, dtype=bool)
    if method == "minmax":
        low, high = x.min(axis=-2, keepdims=True), x.max(axis=-2, keepdims=True)
        span = np.where(high > low, high - low, 1.0)
        out = np.where(c, (high - x) / span, (x - low) / span)
        return np.where(_constant(x), 1.0, out)
    if method == "vector":
        norm = np.sqrt((x**2).sum(axis=-2, keepdims=True))
        ratio = x / np.where(norm > 0, norm, 1.0)
        return np.where(c, 1.0 - ratio, ratio)
    if method == "max":
        top = np.abs(x).max(axis=-2, keepdims=True)
        ratio = x / np.where(top > 0, top, 1.0)
        return np.where(c, 1.0 - ratio, ratio)
    # sum: the one left
    if np.any(x[..., c] <= 0):
        raise ConfigError(f"sum normalisation needs cost scores > 0 (it uses 1/x), got {x[..., c].min():g}; "
                          "use minmax or vector")
    if np.any(x[..., ~c] < 0):  # a negative sum would flip the column: the worst option first
        raise ConfigError(f"sum normalisation needs benefit scores >= 0 (it divides by their sum), got "
                          f"{x[..., ~c].min():g}; use minmax or vector")
    inverse = np.where(c, 1.0 / np.where(x > 0, x, 1.0), x)
    total = inverse.sum(axis=-2, keepdims=True)
    return inverse / np.where(total != 0, total, 1.0)


def wsm(normalized: ArrayLike, weights: ArrayLike) -> FloatArray:
    """Weighted sum: ``sum_j w_j * n_ij`` for each option (and each draw, if stacked).

    ``weights`` has shape ``(n,)`` or, for stacked draws, ``(d, n)``.

    Parameters
    ----------
    normalized : array_like, shape (..., m, n)
        Benefit-oriented normalised values (:func:`normalize`): options on axis -2, criteria on axis -1.
    weights : array_like, shape (n,) or (d, n)
        Criterion weights (usually summing to 1), one row per draw when stacked.

    Returns
    -------
    numpy.ndarray, shape (..., m)
        One score per option (and draw); higher is better.

    References
    ----------
    .. [1] P. C. Fishburn, "Additive utilities with incomplete product sets", *Operations Research* 15, 1967.

    Examples
    --------
    >>> wsm([[0.0, 1.0], [1.0, 0.5]], [0.25, 0.75]).tolist()
    [0.75, 0.625]
    >>> wsm([[[0.0, 1.0], [1.0, 0.5]]] * 2, [[1.0, 0.0], [0.0, 1.0]]).tolist()  # two draws of the weights
    [[0.0, 1.0], [1.0, 0.5]]
    """
    v = np.asarray(normalized, dtype=float)
    w = np.asarray(weights, dtype=float)
    return np.einsum("...ij,...j->...i", v, w)


def topsis(normalized: ArrayLike, weights: ArrayLike) -> FloatArray:
    """TOPSIS closeness ``d- / (d+ + d-)`` to the ideal, on benefit-oriented normalised values.

    The weighted values ``w_j * n_ij`` are compared with the best (ideal) and worst (anti-ideal) value of
    each column; the score is the relative closeness to the ideal, in [0, 1]. An option equal to both
    (every column constant) scores 0.5.

    Parameters
    ----------
    normalized : array_like, shape (..., m, n)
        Benefit-oriented normalised values (:func:`normalize`): options on axis -2, criteria on axis -1.
    weights : array_like, shape (n,) or (d, n)
        Criterion weights (usually summing to 1), one row per draw when stacked.

    Returns
    -------
    numpy.ndarray, shape (..., m)
        Closeness to the ideal per option (and draw), in [0, 1]; higher is better.

    References
    ----------
    .. [1] C.-L. Hwang and K. Yoon, *Multiple Attribute Decision Making: Methods and Applications*,
       Springer, 1981.

    Examples
    --------
    >>> topsis([[0.0, 1.0], [1.0, 0.0]], [0.75, 0.25]).round(2).tolist()
    [0.25, 0.75]
    >>> topsis([[0.5, 0.5], [0.5, 0.5]], [0.5, 0.5]).tolist()  # nothing to tell them apart
    [0.5, 0.5]
    """
    v = np.asarray(normalized, dtype=float) * np.asarray(weights, dtype=float)[..., None, :]
    best, worst = v.max(axis=-2, keepdims=True), v.min(axis=-2, keepdims=True)
    d_plus = np.sqrt(((v - best) ** 2).sum(axis=-1))
    d_minus = np.sqrt(((v - worst) ** 2).sum(axis=-1))
    total = d_plus + d_minus
    return np.where(total > 0, d_minus / np.where(total > 0, total, 1.0), 0.5)


METHODS = {"wsm": wsm, "topsis": topsis}


def scorer(method: str) -> Callable[[FloatArray, FloatArray], FloatArray]:
    """The scoring function named ``method`` (a key of ``METHODS``); ConfigError for any other name."""
    try:
        return METHODS[method]
    except KeyError:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}") from None
