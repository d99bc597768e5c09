"""The event loop: instances with request slots, cold starts, keep-alive, queues, nodes and autoscalers.

One heap of ``(time, seq, kind, payload)`` with an ``itertools.count`` tie-breaker (SimPy's core), so a
run repeats exactly; arrivals come from a sorted array and are merged with the heap rather than pushed
onto it, after the heap's events at the same time. Every model in ``mlplat sim`` that is not a plain
one-request-per-instance function runs here: Cloud Run (slots per instance, idle timeout, min instances),
Kubernetes (pods on nodes, a FIFO queue at the load balancer, the HPA as a periodic event) and Knative (the
KPA with stable and panic windows, scale to zero, the activator starting a pod when a request meets zero
pods).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

_DEPART, _READY, _EXPIRE, _TICK, _NODE_EXPIRE = range(5)


@dataclass(frozen=True)
class Hpa:
    """Horizontal Pod Autoscaler settings (Kubernetes defaults)."""

    target: float = 0.7
    period: float = 15.0
    tolerance: float = 0.1
    stabilization: float = 300.0
    up_pods: int = 4
    up_percent: float = 100.0
    up_window: float = 15.0  # the scale-up policies' periodSeconds: their limits count this window's changes


@dataclass(frozen=True)
class Kpa:
    """Knative Pod Autoscaler settings (Knative defaults)."""

    target: float = 70.0  # target concurrency per pod times the target utilisation
    stable_window: float = 60.0
    panic_window: float = 6.0
    panic_threshold: float = 2.0
    scale_to_zero_grace: float = 30.0
    tick: float = 2.0


@dataclass(frozen=True)
class PoolSpec:
    """How the instances of one platform behave."""

    slots: int = 1
    startup_s: float = 0.0
    keep_alive: float | None = None  # idle instances expire after this (serverless); None: never
    min_instances: int = 0
    max_instances: int = 1_000_000
    on_demand: bool = True  # a request with no free slot starts an instance itself (serverless)
    queue: bool = False  # without a free slot and at max instances: wait in FIFO (True) or reject
    initial: int = 0  # ready instances at t = 0
    autoscaler: Hpa | Kpa | None = None
    pods_per_node: int | None = None  # None: no nodes (serverless)
    node_provision_s: float = 0.0
    node_scale_down_s: float = 600.0
    # Each billable period of an instance (from the start of its start-up or first request to the end of its
    # last request) is billed in whole steps of this many seconds: Cloud Run rounds up to 100 ms. 0: exactly.
    bill_step: float = 0.0


@dataclass(frozen=True)
class PoolRun:
    """Per-request outcomes and time integrals over the measured horizon."""

    start: np.ndarray
    finish: np.ndarray
    cold: np.ndarray
    rejected: np.ndarray
    instance_seconds: float
    busy_instance_seconds: float
    billed_busy_seconds: float  # busy_instance_seconds with each billable period rounded up to bill_step
    node_seconds: float
    idle_min_seconds: float  # the integral of the idle instances among the first min_instances
    peak_instances: int
    peak_nodes: int


class _Node:
    __slots__ = ("alive", "in_room", "index", "pods", "ready_at", "stamp")

    def __init__(self, ready_at: float, index: int) -> None:
        self.alive, self.pods, self.ready_at, self.stamp = True, 0, ready_at, 0.0
        self.index, self.in_room = index, False


class _Instance:
    __slots__ = ("active", "alive", "billed_since", "billed_until", "draining", "in_avail", "node", "ready",
                 "ready_at", "stamp", "waiting")

    def __init__(self, ready_at: float, node: _Node | None) -> None:
        self.active = 0
        # The billable period in progress (PoolSpec.bill_step): since when, and until when once it paused.
        self.billed_since: float | None = None
        self.billed_until: float | None = None
        self.alive = True
        self.draining = False
        self.in_avail = False
        self.node = node
        self.ready = False
        self.ready_at = ready_at
        self.stamp = -1.0
        self.waiting: list[int] = []


class _Loop:
    """State of one run. Invariant: ``avail`` holds every ready, non-draining instance with a free slot
    (possibly with stale entries, dropped when met), most recently freed on top."""

    def __init__(self, spec: PoolSpec, arrivals: np.ndarray, service: np.ndarray, horizon: tuple[float, float]):
        self.spec = spec
        # Python floats, not numpy scalars: indexed once per event, and float64 -> float is exact.
        self.arrivals: list[float] = arrivals.tolist()
        self.service: list[float] = service.tolist()
        self.t0, self.t1 = horizon
        n = len(arrivals)
        self.start = np.full(n, np.nan)
        self.finish = np.full(n, np.nan)
        self.cold = np.zeros(n, dtype=bool)
        self.rejected = np.zeros(n, dtype=bool)
        self.heap: list[tuple[float, int, int, object]] = []
        self.seq = itertools.count()
        self.avail: list[_Instance] = []
        self.queue: deque[int] = deque()
        # A dict, not a set: iteration in creation order keeps runs repeatable (a set orders by address).
        self.instances: dict[_Instance, None] = {}
        self.starting: dict[_Instance, None] = {}  # the instances not ready yet, also in creation order
        # Nodes that may have room for a pod, by creation order: a new pod goes to the oldest live node with
        # room. Every live node with room is here; full or expired ones leave when they reach the top. (A
        # scan of all nodes per pod took minutes at tens of thousands of pods.)
        self.room: list[tuple[int, _Node]] = []
        self.node_index = itertools.count()
        self.n_alive = 0  # instances alive, draining excluded from the autoscaler's count
        self.n_spec = 0
        self.n_billable = 0  # starting or with a request in flight
        self.n_nodes = 0
        self.active = 0
        self.last = 0.0
        self.inst_int = self.busy_int = self.node_int = 0.0
        self.step = spec.bill_step
        self.bill_extra = 0.0  # what rounding each billable period up to a step adds to busy_int
        self.idle_min_int = 0.0
        self.kept = spec.min_instances  # read on every event: a plain attribute, not spec's
        self.load_int = self.demand_int = 0.0  # unclipped, for the autoscalers
        self.peak_inst = self.peak_nodes = 0
        self.hpa_recs: deque[tuple[float, int]] = deque()
        self.hpa_changes: deque[tuple[float, int]] = deque()  # (time, change in replicas) of each HPA scale
        self.hpa_load_at_sync = 0.0  # load_int at the last HPA sync
        self.kpa_hist: deque[tuple[float, float]] = deque()
        self.panic_since: float | None = None
        self.zero_since: float | None = None

    # -- time integrals ---------------------------------------------------------------------------------
    def advance(self, t: float) -> None:
        # Runs once per event: plain comparisons, not max()/min() calls, on the common path (wholly inside
        # the measured window); the floats are the same either way.
        last = self.last
        if t <= last:
            return
        span = t - last
        active = self.active
        self.load_int += active * span
        self.demand_int += (active + len(self.queue)) * span
        self.last = t
        if last >= self.t0 and t <= self.t1:
            dt = span
        else:
            dt = min(t, self.t1) - max(last, self.t0)
            if dt <= 0:
                return
        n_alive, n_nodes = self.n_alive, self.n_nodes
        self.inst_int += n_alive * dt
        self.busy_int += self.n_billable * dt
        # Idle min instances (Cloud Run bills them): of min(alive, min_instances) kept instances, those not
        # starting or serving. An idle instance above the minimum is free, even while a min one serves.
        kept = self.kept
        if kept:
            idle = (n_alive if n_alive < kept else kept) - self.n_billable
            if idle > 0:
                self.idle_min_int += idle * dt
        self.node_int += n_nodes * dt
        if n_alive > self.peak_inst:
            self.peak_inst = n_alive
        if n_nodes > self.peak_nodes:
            self.peak_nodes = n_nodes

    def push(self, time: float, kind: int, payload: object) -> None:
        heapq.heappush(self.heap, (time, next(self.seq), kind, payload))

    # -- instances and nodes ----------------------------------------------------------------------------
    def _place(self, t: float, ready_now: bool) -> _Node | None:
        per = self.spec.pods_per_node
        if per is None:
            return None
        room = self.room
        while room:
            node = room[0][1]
            if node.alive and node.pods < per:
                node.pods += 1
                if node.pods == per:
                    heapq.heappop(room)
                    node.in_room = False
                return node
            heapq.heappop(room)
            node.in_room = False
        node = _Node(t if ready_now else t + self.spec.node_provision_s, next(self.node_index))
        node.pods = 1
        self._offer_node(node)
        self.n_nodes += 1
        return node

    def _offer_node(self, node: _Node) -> None:
        """Put ``node`` among the nodes with room, if it has room and is not there yet."""
        per = self.spec.pods_per_node
        if per is not None and node.pods < per and not node.in_room:
            heapq.heappush(self.room, (node.index, node))
            node.in_room = True

    def create(self, t: float, ready_now: bool = False) -> _Instance:
        node = self._place(t, ready_now)
        begin = max(t, node.ready_at) if node is not None else t
        inst = _Instance(begin if ready_now else begin + self.spec.startup_s, node)
        self.instances[inst] = None
        self.starting[inst] = None
        self.n_alive += 1
        self.n_spec += 1
        self.n_billable += 1  # starting: billable until ready (Cloud Run bills start-up time)
        if self.step:
            self._bill_open(inst, t)
        if ready_now:
            self.make_ready(inst, t)
        else:
            self.push(inst.ready_at, _READY, inst)
        return inst

    def remove(self, inst: _Instance, t: float) -> None:
        inst.alive = False
        self.instances.pop(inst, None)
        self.starting.pop(inst, None)
        self.n_alive -= 1
        if not inst.draining:
            self.n_spec -= 1
        if not inst.ready:
            self.n_billable -= 1
            if self.step:
                inst.billed_until = t
        if self.step:
            self._bill_close(inst)
        node = inst.node
        if node is not None:
            node.pods -= 1
            self._offer_node(node)
            if node.pods == 0:
                node.stamp = t
                self.push(t + self.spec.node_scale_down_s, _NODE_EXPIRE, (node, t))

    def make_ready(self, inst: _Instance, t: float) -> None:
        if not inst.alive:
            return
        if not inst.ready and inst.ready_at > t:
            return
        was_billable = not inst.ready
        inst.ready = True
        self.starting.pop(inst, None)
        if was_billable:
            self.n_billable -= 1
            if self.step:
                inst.billed_until = t  # paused: serving a waiting request at once goes on with it
        for r in inst.waiting:
            self.cold[r] = True  # it started this instance, even if the start took no time
            self.serve(inst, r, t)
        inst.waiting = []
        while self.queue and inst.active < self.spec.slots and not inst.draining:
            self.serve(inst, self.queue.popleft(), t)
        self.released(inst, t)

    def serve(self, inst: _Instance, r: int, t: float) -> None:
        if inst.active == 0 and inst.ready:
            self.n_billable += 1
            if self.step:
                self._bill_open(inst, t)
        inst.active += 1
        self.active += 1
        self.start[r] = t
        if inst.ready_at > self.arrivals[r]:
            self.cold[r] = True
        heapq.heappush(self.heap, (t + self.service[r], next(self.seq), _DEPART, (inst, r)))  # push(), inlined

    def released(self, inst: _Instance, t: float) -> None:
        """After a slot of ``inst`` frees (or it becomes ready): offer it, or let it idle."""
        if inst.draining:
            if inst.active == 0:
                self.remove(inst, t)
            return
        if inst.active < self.spec.slots and not inst.in_avail:
            inst.in_avail = True
            self.avail.append(inst)
        if inst.active == 0:
            inst.stamp = t
            if self.spec.keep_alive is not None:
                self.push(t + self.spec.keep_alive, _EXPIRE, (inst, t))

    # -- billing in steps (PoolSpec.bill_step) ----------------------------------------------------------
    def _bill_open(self, inst: _Instance, t: float) -> None:
        """``inst`` becomes billable at ``t``: a new period, or the paused one going on if it paused at ``t``."""
        if inst.billed_since is not None and inst.billed_until is None:
            return  # still open (a slot passed straight to a queued request)
        if inst.billed_since is not None and inst.billed_until != t:
            self._bill_close(inst)
        if inst.billed_since is None:
            inst.billed_since = t
        inst.billed_until = None

    def _bill_close(self, inst: _Instance, end: float | None = None) -> None:
        """End ``inst``'s billable period (at its pause, or at ``end`` if still open) and add its rounding."""
        since, until = inst.billed_since, inst.billed_until
        inst.billed_since = inst.billed_until = None
        if since is None:
            return
        if until is None:
            until = end if end is not None else since
        # Only the part inside the measured window is billed, as busy_int integrates only that part.
        period = min(until, self.t1) - max(since, self.t0)
        if period > 0:
            self.bill_extra += math.ceil(period / self.step - 1e-9) * self.step - period

    def free_instance(self) -> _Instance | None:
        avail, slots = self.avail, self.spec.slots
        while avail:
            inst = avail[-1]
            if inst.alive and inst.ready and not inst.draining and inst.active < slots:
                if inst.active + 1 >= slots:
                    avail.pop()
                    inst.in_avail = False
                return inst
            avail.pop()
            inst.in_avail = False
        return None

    def starting_with_room(self) -> _Instance | None:
        # Called on every arrival that finds no free slot: scanning only the starting instances keeps an
        # overloaded pool at its largest size from walking all of them each time.
        for inst in self.starting:
            if not inst.draining and len(inst.waiting) < self.spec.slots:
                return inst
        return None

    # -- events -----------------------------------------------------------------------------------------
    def arrive(self, r: int, t: float) -> None:
        inst = self.free_instance()
        if inst is not None:
            self.serve(inst, r, t)
            return
        spec = self.spec
        if spec.on_demand:
            starting = self.starting_with_room() if spec.slots > 1 else None
            if starting is not None:
                starting.waiting.append(r)
                return
            if self.n_alive < spec.max_instances:
                self.create(t).waiting.append(r)
                return
        elif self.n_spec == 0 and isinstance(spec.autoscaler, Kpa) and spec.max_instances > 0:
            self.create(t)  # the activator asks for a pod at once when a request meets zero pods
        if spec.queue:
            self.queue.append(r)
        else:
            self.rejected[r] = True

    def depart(self, inst: _Instance, t: float) -> None:
        inst.active -= 1
        self.active -= 1
        if self.queue and not inst.draining:
            self.serve(inst, self.queue.popleft(), t)
            if inst.active == 1:
                self.n_billable -= 1  # serve() counted a 0 -> 1 transition that was really 1 -> 1
            return
        if inst.active == 0:
            self.n_billable -= 1
            if self.step:
                inst.billed_until = t
        self.released(inst, t)

    def expire(self, inst: _Instance, stamp: float, t: float) -> None:
        if inst.alive and inst.active == 0 and inst.stamp == stamp and not inst.draining \
                and self.n_spec > self.spec.min_instances:
            self.remove(inst, t)

    def scale_to(self, desired: int, t: float) -> None:
        if desired > self.n_spec:
            for _ in range(desired - self.n_spec):
                self.create(t)
        elif desired < self.n_spec:
            # Kubernetes deletes pods that are not ready first, then the least busy.
            victims = sorted((i for i in self.instances if not i.draining),
                             key=lambda i: (i.ready, i.active))[: self.n_spec - desired]
            for inst in victims:
                inst.draining = True
                self.n_spec -= 1
                if not inst.ready or inst.active == 0:
                    self.queue.extend(inst.waiting)
                    inst.waiting = []
                    self.remove(inst, t)

    def tick(self, t: float) -> None:
        scaler = self.spec.autoscaler
        if isinstance(scaler, Hpa):
            self.hpa(scaler, t)
            nxt = t + scaler.period
        elif isinstance(scaler, Kpa):
            self.kpa(scaler, t)
            nxt = t + scaler.tick
        else:
            return
        if nxt <= self.t1:
            self.push(nxt, _TICK, None)

    def hpa(self, h: Hpa, t: float) -> None:
        # Kubernetes HPA: desired = ceil(current * metric / target), skipped inside the tolerance; pods not
        # ready count as 0% (the load integral only holds requests in flight); scale-up limited to
        # max(4 pods, 100%) per 15 s; scale-down takes the highest recommendation of the window.
        load = (self.load_int - self.hpa_load_at_sync) / h.period
        self.hpa_load_at_sync = self.load_int
        current = max(self.n_spec, 1)
        ratio = load / (current * self.spec.slots * h.target)
        desired = self.n_spec if abs(ratio - 1) <= h.tolerance else math.ceil(load / (self.spec.slots * h.target))
        desired = min(max(desired, self.spec.min_instances), self.spec.max_instances)
        # Kubernetes keeps the recommendations made after now - window: one exactly a window old has left it.
        recs = self.hpa_recs
        while recs and recs[0][0] <= t - h.stabilization:
            recs.popleft()
        recs.append((t, desired))
        if desired < self.n_spec:
            desired = min(self.n_spec, max(d for _, d in recs))
        # The policies limit the change over the last up_window, whatever the sync period: the limit grows
        # from the replicas at its start (the changes made after t - up_window taken off), and never asks
        # for fewer pods than there are.
        changes = self.hpa_changes
        while changes and changes[0][0] <= t - h.up_window:
            changes.popleft()
        base = self.n_spec - sum(change for _, change in changes)
        limit = max(base + h.up_pods, math.ceil(base * (1 + h.up_percent / 100)), self.n_spec)
        before = self.n_spec
        self.scale_to(min(desired, limit), t)
        if self.n_spec != before:
            changes.append((t, self.n_spec - before))

    def kpa(self, k: Kpa, t: float) -> None:
        # Knative KPA: average concurrency (in flight plus queued at the activator) over the stable and
        # panic windows; panic when the panic-window demand is >= threshold x ready pods, and hold the
        # scale for a stable window; scale-down at most halves; zero only after the grace period.
        self.kpa_hist.append((t, self.demand_int))
        while self.kpa_hist and self.kpa_hist[0][0] < t - k.stable_window - 1e-9:
            self.kpa_hist.popleft()

        def average(window: float) -> float:
            # From the oldest sample inside the window. The stable window's is the first left after the
            # trim above; the panic window's is found from the newest end, a few ticks back.
            since = t - window - 1e-9
            ref = self.kpa_hist[0]
            if window < k.stable_window:
                for sample in reversed(self.kpa_hist):
                    if sample[0] < since:
                        break
                    ref = sample
            span = t - ref[0]
            return (self.demand_int - ref[1]) / span if span > 0 else float(self.active + len(self.queue))

        stable = math.ceil(average(k.stable_window) / k.target - 1e-9)
        panic = math.ceil(average(k.panic_window) / k.target - 1e-9)
        ready = sum(1 for i in self.instances if i.ready and not i.draining)
        if panic / max(ready, 1) >= k.panic_threshold and panic > ready:
            self.panic_since = t
        if self.panic_since is not None and t - self.panic_since < k.stable_window:
            desired = max(panic, self.n_spec)
        else:
            self.panic_since = None
            desired = max(stable, self.n_spec // 2) if stable < self.n_spec else stable
        if desired == 0:
            if self.zero_since is None:
                self.zero_since = t
            if t - self.zero_since < k.scale_to_zero_grace or self.queue:
                desired = min(self.n_spec, 1)
        else:
            self.zero_since = None
        desired = min(max(desired, self.spec.min_instances), self.spec.max_instances)
        self.scale_to(desired, t)

    def node_expire(self, node: _Node, stamp: float, t: float) -> None:
        if node.alive and node.pods == 0 and node.stamp == stamp:
            node.alive = False
            self.n_nodes -= 1  # it leaves self.room when it reaches the top

    # -- main loop --------------------------------------------------------------------------------------
    def run(self) -> PoolRun:
        spec = self.spec
        for _ in range(spec.initial):
            self.create(0.0, ready_now=True)
        if spec.autoscaler is not None:
            first = spec.autoscaler.period if isinstance(spec.autoscaler, Hpa) else spec.autoscaler.tick
            if first <= self.t1:  # as every later tick: none after the horizon
                self.push(first, _TICK, None)
        heap, arrivals = self.heap, self.arrivals
        n, i = len(arrivals), 0
        while i < n or heap:
            # At equal times the heap's events come first: a request that ends at t frees its slot for one
            # arriving at t, an instance ready at t serves it, and one expiring at t (keep-alive over) does not.
            if i < n and (not heap or arrivals[i] < heap[0][0]):
                t = arrivals[i]
                self.advance(t)
                self.arrive(i, t)
                i += 1
                continue
            t, _, kind, payload = heapq.heappop(heap)
            self.advance(t)
            if kind == _DEPART:
                inst_r: tuple[_Instance, int] = payload  # type: ignore[assignment]
                self.finish[inst_r[1]] = t
                self.depart(inst_r[0], t)
            elif kind == _READY:
                self.make_ready(payload, t)  # type: ignore[arg-type]
            elif kind == _EXPIRE:
                inst_stamp: tuple[_Instance, float] = payload  # type: ignore[assignment]
                self.expire(inst_stamp[0], inst_stamp[1], t)
            elif kind == _TICK:
                self.tick(t)
            elif kind == _NODE_EXPIRE:
                node_stamp: tuple[_Node, float] = payload  # type: ignore[assignment]
                self.node_expire(node_stamp[0], node_stamp[1], t)
        self.advance(max(self.t1, self.last))
        if self.step:
            for inst in self.instances:  # periods still open or paused at the end
                self._bill_close(inst, end=self.t1)
        return PoolRun(start=self.start, finish=self.finish, cold=self.cold, rejected=self.rejected,
                       instance_seconds=self.inst_int, busy_instance_seconds=self.busy_int,
                       billed_busy_seconds=self.busy_int + self.bill_extra,
                       node_seconds=self.node_int,
                       # The rounded-up end of a busy period is billed as busy, so not as idle too: with minimum
                       # instances it is taken off their idle time (exact when every instance alive is one of
                       # the minimum, as it mostly is; a little low when more run).
                       idle_min_seconds=max(self.idle_min_int - (self.bill_extra if self.kept else 0.0), 0.0),
                       peak_instances=self.peak_inst, peak_nodes=self.peak_nodes)


def simulate_pool(spec: PoolSpec, arrivals: np.ndarray, service: np.ndarray,
                  horizon: tuple[float, float]) -> PoolRun:
    """Run the event loop for one platform and one replication.

    The loop runs until no event is left, past the horizon too (the autoscaler's ticks stop at its end);
    the time integrals count only the horizon.

    Parameters
    ----------
    spec : PoolSpec
        How the platform's instances behave: slots, start-up, keep-alive, limits, queue, autoscaler, nodes.
    arrivals : numpy.ndarray
        Arrival times in seconds, sorted.
    service : numpy.ndarray
        Service time in seconds of each request, the length of ``arrivals``.
    horizon : tuple of float
        The measured window ``(t0, t1)`` in seconds (after the warm-up).

    Returns
    -------
    PoolRun
        Per request: ``start`` and ``finish`` times (NaN for a request never served), ``cold`` (it waited
        for an instance to start) and ``rejected``. Over the horizon: instance-, busy instance- and
        node-seconds, idle seconds of the minimum instances, and the peak instances and nodes.

    References
    ----------
    .. [1] Kubernetes documentation, "Horizontal Pod Autoscaling": algorithm details, tolerance, scaling
       policies (max(4 pods, 100%) per 15 s) and the 300 s scale-down stabilization window.
    .. [2] Knative documentation, "Configuring the autoscaler" and "Kubernetes Pod Autoscaler": 60 s stable
       window, 6 s panic window, 200% panic threshold, scale-to-zero grace period.
    .. [3] SimPy, ``simpy/core.py``: a heap of (time, seq, event) with a counter tie-breaker.

    Examples
    --------
    >>> run = simulate_pool(PoolSpec(slots=1, initial=1, on_demand=False, queue=True),
    ...                     np.array([0.0, 0.5]), np.array([1.0, 1.0]), (0.0, 3.0))
    >>> (run.finish - run.start).tolist(), run.start.tolist()
    ([1.0, 1.0], [0.0, 1.0])

    Serverless, one instance at most and no queue: the first request starts it, the second is refused.

    >>> run = simulate_pool(PoolSpec(slots=1, max_instances=1), np.array([0.0, 0.5]), np.array([1.0, 1.0]),
    ...                     (0.0, 3.0))
    >>> run.cold.tolist(), run.rejected.tolist(), run.instance_seconds
    ([True, False], [False, True], 3.0)
    """
    return _Loop(spec, np.asarray(arrivals, dtype=np.float64), np.asarray(service, dtype=np.float64),
                 horizon).run()
