"""Closed forms the simulator is checked against: Erlang B (loss) and Erlang C (delay) for M/M/c."""

from __future__ import annotations

from mlplat.errors import SimulationError


def erlang_b(servers: int, load: float) -> float:
    """Blocking probability of M/M/c/c with offered load ``load`` = lambda / mu (Erlang B).

    Uses the stable recursion B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1)).

    Parameters
    ----------
    servers : int
        Number of servers ``c`` (no waiting room); 0 gives 1.
    load : float
        Offered load ``a = lambda / mu`` in erlangs, >= 0.

    Returns
    -------
    float
        The probability that an arrival finds every server busy and is lost, in [0, 1].

    References
    ----------
    .. [1] A. K. Erlang, "Solution of some problems in the theory of probabilities of significance in
       automatic telephone exchanges", Elektroteknikeren 13, 1917.
    .. [2] L. Kleinrock, "Queueing Systems, Volume 1", Wiley 1975 (the M/M/m/m loss system).

    Examples
    --------
    >>> round(erlang_b(3, 2.0), 6)
    0.210526
    >>> erlang_b(1, 1.0)  # one server at load 1: a / (1 + a)
    0.5
    """
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(servers: int, load: float) -> tuple[float, float]:
    """``(P(wait), Wq * mu)`` of M/M/c with offered load ``load`` < ``servers`` (Erlang C).

    Multiply the second value by the mean service time to get the mean wait in the queue.

    Parameters
    ----------
    servers : int
        Number of servers ``c``.
    load : float
        Offered load ``a = lambda / mu`` in erlangs, below ``servers``.

    Returns
    -------
    tuple of float
        ``C(c, a)``, the probability that an arrival waits, and ``C(c, a) / (c - a)``, the mean wait in the
        queue in units of the mean service time.

    Raises
    ------
    SimulationError
        If ``load >= servers`` (no steady state).

    References
    ----------
    .. [1] A. K. Erlang, 1917; L. Kleinrock, "Queueing Systems, Volume 1", Wiley 1975, section 3.5.

    Examples
    --------
    >>> p, wq = erlang_c(10, 8.0)
    >>> round(p, 10), round(wq, 10)
    (0.4091801508, 0.2045900754)
    >>> p, wq = erlang_c(1, 0.8)  # M/M/1: P(wait) = rho, Wq * mu = rho / (1 - rho)
    >>> round(p, 10), round(wq, 10)
    (0.8, 4.0)
    """
    if load >= servers:
        raise SimulationError(f"Erlang C needs `load` < `servers` ({servers}) for a steady state, got {load}")
    b = erlang_b(servers, load)
    c = servers * b / (servers - load * (1 - b))
    return c, c / (servers - load)
