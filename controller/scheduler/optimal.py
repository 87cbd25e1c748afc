"""Optimal scheduling: per-antenna dynamic programme, Lagrangian coupling, exact MILP.

One antenna
-----------
The plan of one antenna is a longest path over time. For each window ``w`` and grid
point ``k`` the DP keeps

* ``S(w, k)``: the best value of a plan whose antenna is free and on satellite ``w`` at
  ``k`` (arrived by a handover, or earlier and following it),
* ``E(w, k)``: the best value of a plan whose last track is on ``w`` and ends at ``k``,

with ``E(w, k) = cum(w, k) + max_{i <= k - m} (S(w, i) - cum(w, i))`` (a track of at
least ``m`` steps; ``cum`` is the running value of the window) and ``S`` fed by

* every near handover: ``max E(v, k - d)`` over the track ends ``(k - d, v)`` with
  ``L <= d < G`` whose end pointing is within what each axis covers in
  ``d * r - setup`` (a dense reach mask per lag, the *geometry*, computed once per
  antenna class and kept while it fits in 64 MB),
* ``max_{j <= k - G} E(., j)`` for the rest (``G`` covers set-up plus the longest move),
* the park position at the start.

Every feasible handover is considered (no dominance pruning), so the DP is exact for
any per-step values: plain weights, Lagrangian prices up to a step's whole value,
blocked steps and re-planning bonuses alike. (The MILP for small instances keeps its
explicit arcs: an arc from ``(v, j)`` is dropped when ``(v, j + 1)`` reaches the same
window no later.)

Time is swept in blocks of ``B = L + m_min`` grid steps (``L`` the shortest handover,
``m_min`` the shortest track): the ends of ``[k, k+B)`` only need starts before
``k + L`` and the starts of ``[k+L, k+L+B)`` only need ends before ``k + B``, so each
block is two vectorised phases with no dependency inside either. The result is the
exact optimum of the discretised model for one antenna (checked against an independent
MILP in the tests).

Compiled kernels
----------------
With numba installed (and ``GROUNDLINK_NO_JIT`` not set), the sweep, the values it
reads (prices and blocked steps folded in), the backtrack and the marginal-value prices
run as compiled loops (:mod:`._kernels`): the same recurrence and operations, the same
arrays bit for bit, so the same plans and bounds (tested on random instances). The
sweep then needs no blocks, and it tries each row's best ends first, scanning a row
only when the rotator reaches none of them. On the 7-day bench (four antennas) a DP
takes about 35 ms instead of 300 ms, its values 8 instead of 25 and its backtrack 2
instead of 60 (measured); loading numba and the cached kernels costs a process about
1 s of CPU once.

The rotator's reach is geometry, the same in every DP of a layout: from a layout's
second sweep on, the compiled sweep reads it off a table of bit masks (per cell and
lag, the source slots it reaches; :meth:`_Layout.near_bits`, the same float32
comparisons made once, about 21 ms and 10 MB on the 7-day bench) instead of comparing
angles per DP. Counted on the bench's sweeps, a quarter of the starts found none of
their source row's four best ends in reach and scanned the whole row (31 slots, two
comparisons each); with the masks a start skips a row that has no reached end at once
and scans only the reached slots. A sweep about 30 -> 22 ms (7 days, four antennas,
median of 12 interleaved); the whole solver for 20 iterations (the same plans and
bounds) 2.71 -> 2.27 s CPU with four antennas, 2.03 -> 1.86 s with two and 7.15 ->
6.08 s for three stations (median of 5 interleaved, load about 1.8; measured). Tried
and not kept: longer lists of a row's best ends (6, 8, 12, 16 instead of 4: no faster),
branch-free checks of the list (slower), the lags in the other order (no faster).

Several antennas and stations
-----------------------------
The antennas are coupled by "a satellite on at most one antenna at a time" (also across
stations, which removes redundant contacts) and by the per-day contact limits.

1. Uncoupled (one antenna, or several without the coupling): one DP per antenna
   class, exact unless a daily limit is broken. Coupled: one DP per class at the
   Lagrangian's first prices (marginal-value prices, :func:`_initial_prices`), a
   valid upper bound, always computed, even past the deadline. With several classes
   (stations) also one DP per class at the pooled prices (:func:`_pooled_prices`), a
   second valid bound kept beside the subgradient's (three stations: 2.2 % lower).
2. A feasible plan: antennas in turn, each with the steps the previous ones track
   blocked and on *re-priced* values: before each antenna the first prices are
   computed again for the antennas of each class still to plan and the steps still
   free (:func:`_sequential_repriced`); then contacts beyond a daily maximum dropped.
   The first antenna's plan is the priced DP's of step 1, so this costs one DP per
   further antenna, as the plain antennas in turn did.
3. Small instances: a MILP (HiGHS through scipy) on the same nodes and arcs closes the
   gap exactly.
4. Otherwise, Lagrangian relaxation of the coupling: prices per (satellite, step), one
   DP per class of identical antennas per iteration, projected subgradient steps
   (Polyak's step from the current dual value to the incumbent, half of it for the
   first ``_EARLY_ITERATIONS`` with more than two identical antennas, halved after
   ``_PATIENCE`` iterations without a better bound, more as the run goes on); every
   iteration's ``sum of DPs + sum of prices`` is a valid upper bound (below). The
   subgradient counts each class's one plan as many times as the class has antennas
   (no copies on the other antennas' windows). Every ``_HEURISTIC_EVERY`` iterations
   the Lagrangian heuristic on the best prices (unless the quick one ran on the
   iteration before) and every few the quick one on the current prices: antennas in
   turn, each avoiding the previous ones' steps, on the Lagrangian prices plus how much
   the re-priced prices of step 2 differ from the first ones (:func:`_sequential_many`);
   with more than two antennas, a better plan found so has its first antenna re-planned
   on plain values against the others (one DP); every ``_AVERAGE_EVERY`` iterations
   also the bound at a moving average of the iterates' prices (one DP per class), kept
   as a side bound (the subgradient goes on from the iterates); at the end each antenna
   re-planned against the others, while that pays.

Steps 3-4 stop when ``deadline()`` says so (the bounded-time mode): the result always
carries a valid upper bound, hence its optimality gap.

Prices live on the priced cells only (the (satellite, step) pairs some window can
track, :meth:`_Solver.priced_cells`), and the DPs read them there (``on_cells``): no
dense satellites x grid points array is written per iteration or per antenna in turn.
The subgradient's norm is an elementwise sum, not a BLAS dot, whose idle worker threads
would spin on the process's CPU time (the 30 s CPU budget bought only about 18 s of
solving). On the 7-day bench (four antennas), against the previous code in one process,
interleaved: the least work after the windows 0.66 -> 0.60 s CPU (median of 7; best
0.61 -> 0.49), 12 iterations with their heuristics and the final best responses
3.98 -> 3.01 s (median of 4).

The 2 s budget (7 days, four antennas: about 0.6 s of least work after the 0.45 s of
windows, then about 50 ms per iteration, of which the compiled sweep is over half, and
0.25 s per heuristic): no copies of the class plan, no full heuristic right after a
quick one and the first antenna's re-plan after a better heuristic plan give 12-18
iterations instead of 9-13 and, interleaved in one process (median of 4, load about
2), a 0.711 % gap instead of 0.850 % (two antennas: 1.179 % instead of 1.308 %);
three stations: 3.12 % instead of 5.25 % (the pooled side bound, for 0.10 s more of
least work, 3.08 s instead of 2.98). What limits it: after 15 iterations the bound
(3,394,647) is 0.20 % above the one after 300 (30 s: 3,387,950) and the plan
(3,370,770) 0.18 % below that run's (3,376,920), whose own gap is still 0.33 %: the
budget buys about 20 iterations a second, and the bound gains about 0.02 % per
iteration from the 10th to the 15th and 0.005 % from the 15th to the 30th. Tried and
not kept (measured, 7 days, four antennas, bound after 10/15/30 iterations; plain
subgradient 3,399.2k/3,394.9k/3,392.5k):

* deflected subgradient (Camerini-Fratta-Maffioli, gamma 1.5 and 1.0): 3,401.8k /
  3,399.0k / 3,391.3k and 3,401.0k / 3,397.1k / 3,392.7k: slower early, where the
  2 s budget is;
* the volume algorithm's averaged direction (alpha 0.5, 0.3): 3,402.2k / 3,397.8k /
  3,391.6k and 3,409.1k / 3,398.2k / 3,394.5k;
* smaller first steps (a quarter, an eighth of Polyak's, for 8 or 15 iterations):
  0.07 % lower after 8-12 iterations, higher after 15; with two antennas any early
  halving did worse (8 iterations: 2,209.1k instead of 2,202.9k);
* a Dantzig-Wolfe master (the class plans and the antennas-in-turn plans as columns,
  class multiplicity, cell rows merged by which columns cover them, HiGHS): the LP
  stays at the incumbent (every new column collides with the others) and its duals
  price only the covered cells, so the DP at them (plain, or halfway to the best
  prices, Wentges-style) bounded 3.69-4.5M for 12 iterations: without a proper
  stabilisation it does not start to converge within the budget;
* one round of each antenna re-planned against the others after the first plan:
  +2,400 (0.07 %) for about 0.2 s, no better than the iterations it displaces; the
  first antenna alone there: 0.706 % instead of 0.676 % (a budget of 24 DPs, about
  the 2 s one; kept after the heuristics instead, step 4).

Then (same budget): the reach bit masks (Compiled kernels, above) cut the CPU of 20
iterations by 16 % (four antennas) and 8 % (two), the same plans and bounds; the
average's side bound (``_AVERAGE_EVERY``) lowers the bound at a fixed iteration count
(24 iterations: four antennas 0.595 % gap instead of 0.626 %, two 0.682 % instead of
0.777 %). On the 2 s bench these are within the noise of a shared machine (load 2-3:
12-20 iterations per run for the same code; three bench runs interleaved with the
code before, median of 3 each: four antennas 0.674 / 0.738 / 0.685 % gap against
0.719 / 0.685 / 0.673 %, two 0.885 / 0.986 / 1.243 % against 1.042 / 0.905 / 0.953 %).
In one process, interleaved with both turned off (the code before), median of 6, load
about 2.2: four antennas 0.721 % gap instead of 0.770 %, two 0.907 % instead of
1.088 %; the average alone (median of 5): two antennas 0.805 % instead of 0.860 %,
four 0.673 % and 0.665 % (noise). What limits the 2 s gap is unchanged: about 20 iterations,
a bound 0.15-0.2 % above the 300-iteration one and a plan 0.18 % below that run's, and
the gap after 300 iterations still 0.33 %. Tried and not kept (7 days, four antennas,
fixed iteration counts; measured):

* a Polyak step per block of time (1, 6 or 24 h; each block's share of the gap,
  ``p (1 - coverage) + value (coverage - incumbent)`` summed over its cells, over its
  share of the subgradient's norm): the bound stayed at the first one for 15
  iterations; the global step scaled per block by that ratio clipped to 1/1.5..1.5,
  1/2..2 or 1/3..3: 0.79-0.86 % gap after 15 iterations instead of 0.68 %,
  0.58-0.66 % after 30 instead of 0.62 %;
* composed prices: per block of 1-24 h the prices of the iterate whose share of the
  dual value there was lowest, evaluated every third iteration and stepped on from
  when better: the blocks' sum promised 3,395,150 where the DP (its tracks cross the
  blocks) gave 3,398,500, and the subgradient after the jumps did no better (30
  iterations plus 7-10 such DPs: 3,392.1-3,392.7k against 3,392.6k without);
* no jump of the step when the early half factor ends (theta carried on halved, or
  halved throughout): 0.747 % gap after 12 iterations instead of 0.812 %, within
  0.003 % from 16 on;
* in the compiled sweep, longer lists of a row's best ends, branch-free checks of the
  list and the lags in the other order (above); the sweep's arrays kept per layout and
  reused (no fresh pages per DP): 20 iterations 2.66 s CPU instead of 2.72 (four
  antennas, median of 5 interleaved), within the noise.

Where the gap was, and what closed most of it (the seed constellation, four antennas at
one station): over 24 h, 60 iterations left a 2.0-2.1 % gap, of which the bound
accounted for at most 0.2-0.3 %. The plain antennas in turn gave the first antennas
many short hops (179 tracks against about 130 in a plan 1.9 % better, found after 400
iterations with a patience of 10): alone, the first antenna hops between the valuable
satellites and leaves their passes in pieces that the others pick up at the cost of
one more handover each, or lose. Re-planning one antenna (or two, one after the other)
against the others does not leave that local optimum, nor do the plain antennas in
turn on the first prices at any fraction, nor a cost per track or per cut pass in the
first antennas' DPs (measured). What does is step 2's re-pricing: each antenna sees a
contested satellite at about the marginal value (the price takes off the excess), so
it keeps to long tracks, and the last antenna of a class takes the best that is left;
24 h: 0.59 % below the best bound found instead of 2.06 %, in the same work.

Why the bounds are valid
------------------------
Let ``x`` be any feasible plan and ``x_a`` its tracks on antenna ``a``; write
``v(x_a)`` for their plain value and ``n(x, s, k)`` for the number of antennas tracking
satellite ``s`` on step ``[k, k + 1]`` (at most 1 under the coupling). For any prices
``p >= 0`` on (satellite, step)::

    value(x) = sum_a v(x_a)
             = sum_a (v(x_a) - sum_{(s,k) in x_a} p(s, k)) + sum_{s,k} p(s, k) n(x, s, k)
            <= sum_a DP_a(v - p) + sum_{s,k} p(s, k)

since ``n <= 1`` and ``p >= 0``, and each ``x_a`` is a plan of antenna ``a`` alone,
worth at most the exact optimum ``DP_a`` of that antenna's DP on the priced values
(the per-day limits are dropped there, which only allows more plans). So every price
vector the method tries, clipped to ``p >= 0`` (the caps only restrict where it
searches), gives an upper bound; ``p = 0`` is "every antenna alone"; the pooled prices
of step 1 are such a vector too, and so is the moving average of step 4 (a weighted sum
of price vectors >= 0, with weights >= 0), and the smaller of two valid bounds is valid.
Identical antennas share one DP (same windows, same priced values, same optimum). The
MILP's bound is HiGHS's dual bound, or the plan itself when HiGHS proves optimality.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from controller.scheduler import _kernels
from controller.scheduler.model import EPS_S, Plan, Problem, Window

__all__ = ["RawTrack", "SolveResult", "plain_value", "solve_optimal"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

NEG = -math.inf
# Big constants: reservations must be kept whatever they cost elsewhere, and blocked
# steps must separate runs whatever the values (see _Layout.values).
_RUN_OFFSET = 1e13
# "No prices" and "no blocked steps" for the compiled values kernel.
_EMPTY_F = np.zeros(0)
_EMPTY_B = np.zeros(0, dtype=bool)
# Largest precomputed near-handover table (one byte per entry).
_NEAR_CELLS_MAX = 64_000_000
# Largest table of the compiled sweep's reach bit masks (cells x lags, one int64 each;
# see _Layout.near_bits): 7 days, one station, about 10 MB. 0 turns them off.
_NEAR_BITS_MAX = 64_000_000
_NO_BITS = np.zeros((0, 1), dtype=np.int64)
# Lagrangian iterations between two runs of the Lagrangian heuristic.
_HEURISTIC_EVERY = 10
# In between, the quick heuristic (the current prices only) every this many: better
# plans earlier also make Polyak's steps more accurate (a 24 h, two-antenna case:
# 0.5 % gap after 70 iterations instead of 1.6 %, measured).
_QUICK_HEURISTIC_EVERY = 3
# Lagrangian iterations without a better bound before the subgradient step is halved.
# Halving on every miss froze the prices within about 20 iterations (the bound then
# stalls 1-2 % above the optimum); waiting for 8 misses converges (0.003 % above an
# optimum the MILP proved on a 3 h sub-instance) but is slow in the first 30
# iterations; 2 is as good as 8 after 60 iterations and gives the lowest bound of 1, 2,
# 3, 8 after 30 (24 h, two antennas, measured).
_PATIENCE = 2
# ... or one miss per this many iterations done, when more: long runs halve less often.
# 24 h, four antennas: after about 120 iterations 0.41 % gap instead of 0.48 % (a fixed
# patience of 8 reached 0.24 % there, but 0.91 % after 40 iterations, where this gives
# 0.47 % and a fixed 2 0.51 %); 7 days, 30 s: 0.69 % instead of 0.72 % (measured).
_PATIENCE_GROWTH = 10
# Rounds of "each antenna re-planned against the others" at most.
_BEST_RESPONSE_ROUNDS = 4
# Polyak's factor at the start (halved as above). After 37 iterations on the 7-day
# bench, 2 instead of 1 gave two antennas a 1.5 % better plan (0.37 % gap instead of
# 2.41 %; 3 gave 0.25 %) and four a slightly lower bound (2.04 % instead of 2.15 %);
# over 24 h (60 iterations) 1.9 did no worse than 1 for two and four antennas
# (measured). The larger early steps reach prices on which the Lagrangian heuristic
# finds the better plans sooner.
_THETA0 = 2.0
# With more than two identical antennas in a class, half that for the first
# iterations: the first steps from the marginal-value prices overshoot (the incumbent
# is then far below the optimum), so four antennas (7 days) kept their first bound
# for 6 iterations with 2; halved for the first 8, the bound after 7 iterations is
# 3,399,946 instead of 3,404,856 (first 3,407,267; the 2 s bench does about 7). Later
# it neither helps nor hurts clearly: after 100 iterations 0.437 % gap instead of
# 0.423 % (three antennas: 0.523 % instead of 0.541 %), after 200 0.393 % instead of
# 0.329 %. Halved throughout it is worse later (30 s CPU: 0.47 % instead of 0.37 %),
# and two antennas do best with 2 from the start (37 iterations: 0.68 % gap, 0.76 %
# with 1; all measured on deterministic iteration counts but the 30 s runs).
_EARLY_ITERATIONS = 8
# Every this many iterations, the bound at a moving average of the iterates' prices
# (each iterate weighs _AVERAGE_WEIGHT, the average before it the rest) is also
# computed (one DP per class), and kept beside the subgradient's as a side bound. The
# iterates oscillate around the dual optimum; their average lies nearer to it. 7 days,
# fixed iteration counts: two antennas, after 24 iterations (and 6 such DPs) 2,194,381
# instead of 2,196,527 (-0.10 %; gap 0.68 % instead of 0.78 %), the average's bound below
# the iterates' best at 16 iterations by 0.14 %; four antennas after 24, 3,391,760
# instead of 3,392,923 (gap 0.595 % instead of 0.626 %), but above the bound the DPs
# it costs would have bought before about 20 iterations. 2 s CPU budget, interleaved
# (median of 5): two antennas 0.805 % instead of 0.860 %, four 0.673 % and 0.665 %
# (noise). Stepping on from the average when it is better (a restart there) lowered
# the bound as much but gave worse plans (two antennas 2,174,670 instead of 2,177,190
# at the 2 s budget), and so did the quick heuristic on the averaged prices (four
# antennas, 2 s: 0.835 % gap; all measured). A weight of 0.2 did about as well, 0.15
# every 5 iterations worse (two antennas, 20 iterations: 2,196,795 instead of 2,194,868).
_AVERAGE_EVERY = 4
_AVERAGE_WEIGHT = 0.3


class RawTrack(NamedTuple):
    """A track as the solvers see it: window index, first and last grid point.

    A named tuple (immutable, compared by value): the solvers make tens of thousands per
    second, and a frozen dataclass's constructor took about four times as long.
    """

    window: int
    start: int
    end: int


@dataclass
class SolveResult:
    """Tracks, objective (weight x seconds), upper bound and how they were found."""

    tracks: list[RawTrack]
    objective: float
    upper_bound: float
    method: str
    stats: dict[str, float | int | str] = field(default_factory=dict)

    @property
    def gap(self) -> float:
        """Relative distance of the objective from the upper bound."""
        if self.upper_bound <= 0:
            return 0.0
        return max(0.0, (self.upper_bound - self.objective) / self.upper_bound)


def _sorted_unique(values: IntArray) -> IntArray:
    """The distinct values, sorted: np.unique, but by one sort (numpy 2.4's np.unique
    took 0.3 s on 445,000 integers where the sort takes 7 ms, measured)."""
    out = np.sort(values.astype(np.int64))
    if len(out) > 1:
        out = out[np.append(True, out[1:] != out[:-1])]
    return out


# -- layout of one antenna class ---------------------------------------------------------


@dataclass
class _Arcs:
    """Arcs sorted by destination cell, with the segments the sweep reduces over."""

    src: IntArray
    dst: IntArray
    udst: IntArray
    useg: IntArray
    ucol: IntArray

    @classmethod
    def build(cls, src: IntArray, dst: IntArray, nc: int, ns: int) -> _Arcs:
        """Index sorted arcs: unique destinations, their arc ranges, per-column starts."""
        if len(dst):
            starts = np.concatenate(([0], np.flatnonzero(np.diff(dst)) + 1))
        else:
            starts = np.empty(0, dtype=np.int64)
        udst = dst[starts]
        useg = np.concatenate((starts, [len(dst)])).astype(np.int64)
        ucol = np.searchsorted(udst, np.arange(nc + 1) * ns).astype(np.int64)
        return cls(src, dst, udst, useg, ucol)


class _Layout:
    """Windows of one antenna laid out densely as cells (grid point k, slot s).

    Column-major (``k * S + s``) so that a block of grid points is contiguous. Windows
    sharing a slot are separated by more than a block, which lets every phase of the
    sweep use running maxima down the columns without crossing from one window into
    the next.
    """

    def __init__(
        self,
        problem: Problem,
        antenna: int,
        windows: Sequence[int],
        src_weights: FloatArray | None = None,
    ) -> None:
        self.problem = problem
        # The least a step of each satellite can be worth in any DP run on this layout
        # (prices may lower it that far): what the pruning of arcs may rely on.
        self.src_weights = (
            np.array([sat.weight for sat in problem.satellites])
            if src_weights is None
            else src_weights
        )
        self.antenna = antenna
        self.windows = list(windows)
        grid = problem.grid
        self.nc = grid.n_steps + 1
        self.lag = problem.setup_steps
        ws = [problem.windows[i] for i in self.windows]
        # The windows' attributes in one pass (tens of thousands of windows): columns
        # first, length, min_steps, satellite, fixed.
        flat: list[int] = []
        put = flat.extend
        for w in ws:
            put((w.first, len(w.az_rot_deg), w.min_steps, w.sat, w.kind != "pass"))
        # One flat list (a list of tuples took about half as long again, measured).
        attrs = np.array(flat, dtype=np.int64).reshape(len(ws), 5)
        firsts = np.ascontiguousarray(attrs[:, 0])
        lengths = np.ascontiguousarray(attrs[:, 1])
        self.m_min = int(attrs[:, 2].min()) if len(ws) else 1
        self.block = self.lag + self.m_min
        self.far = problem.far_steps(antenna)
        sep = self.block + 1
        # Slot assignment: earliest-free slot, windows in order of their first point
        # (a stable sort, as sorted() was).
        order = np.argsort(firsts, kind="stable").tolist()
        first_l = firsts.tolist()
        last_l = (firsts + lengths - 1).tolist()
        free: list[int] = []
        busy: list[tuple[int, int]] = []
        slot_l = [0] * len(ws)
        n_slots = 0
        push, pop = heapq.heappush, heapq.heappop
        for i in order:
            f = first_l[i]
            while busy and busy[0][0] + sep <= f:
                push(free, pop(busy)[1])
            if free:
                s = pop(free)
            else:
                s = n_slots
                n_slots += 1
            slot_l[i] = s
            push(busy, (last_l[i], s))
        slot_of = np.array(slot_l, dtype=np.int64)
        self.ns = max(1, n_slots)
        ns, nc = self.ns, self.nc
        self.slot_of = slot_of
        self.firsts = firsts
        self.lengths = lengths
        local = np.repeat(np.arange(len(ws)), lengths)
        off = np.concatenate(([0], np.cumsum(lengths)))[:-1]
        k = firsts[local] + (np.arange(len(local)) - off[local])
        cell = k * ns + slot_of[local]
        self.cell_of_point = cell
        self.point_offset = off
        self.win = np.full(nc * ns, -1, dtype=np.int64)
        self.win[cell] = local
        self.active = self.win >= 0
        self.az = np.full(nc * ns, np.nan)
        self.el = np.full(nc * ns, np.nan)
        if len(ws):
            self.az[cell] = np.concatenate([w.az_rot_deg for w in ws])
            self.el[cell] = np.concatenate([w.el_rot_deg for w in ws])
        self.sat = np.full(nc * ns, -1, dtype=np.int64)
        sats = np.ascontiguousarray(attrs[:, 3])
        self.sat[cell] = sats[local]
        self.step_k = k
        self.first_cell = np.full(nc * ns, 0, dtype=np.int64)
        self.first_cell[cell] = (firsts * ns + slot_of)[local]
        mins = np.ascontiguousarray(attrs[:, 2])
        self.mins = mins
        # pmidx: the cell m steps earlier in the same window, or the NEG sentinel.
        self.neg_cell = nc * ns
        self.zero_cell = nc * ns + 1
        pm = np.full(nc * ns, self.neg_cell, dtype=np.int64)
        valid = k - mins[local] >= firsts[local]
        pm[cell[valid]] = cell[valid] - mins[local][valid] * ns
        self.pmidx = pm
        self.fixed = attrs[:, 4].astype(bool)
        self.act_idx = np.flatnonzero(self.active)
        # The first cell of each active cell's window (what its running sums start from).
        self.act_first = self.first_cell[self.act_idx]
        wl = self.win[self.act_idx]
        self.act_last = self.act_idx // ns == firsts[wl] + lengths[wl] - 1
        # Flat (satellite, grid point) index of each active cell, and of those that
        # open a step (all but a window's last point): how prices and blocked steps,
        # (satellites x grid points) arrays, are read per cell.
        self.act_sk = self.sat[self.act_idx] * nc + self.act_idx // ns
        self.step_idx = self.act_idx[~self.act_last]
        self.step_sk = self.act_sk[~self.act_last]
        # Dominance pruning of the arcs assumes plain per-step values; re-planning's
        # tie-break bonus changes them, so it keeps every arc.
        self.prune = not problem.keep_steps
        self._arcs()

    # -- geometry: the handover arcs --------------------------------------------------
    def _arcs(self) -> None:
        """Where tracks may start and end, the rotator's reach per lag, start arcs.

        A handover of lag ``d`` in ``[L, G)`` from a track end at ``(k - d, s1)`` to
        ``(k, s2)`` is feasible when each axis covers the angle in ``d * r - setup``;
        the sweep checks that densely (:meth:`near_stack`), which is exact for any
        per-step values (prices, blocked steps, bonuses). The pruned explicit arcs
        (:attr:`arcs`) are only built for the MILP.
        """
        problem = self.problem
        ns, nc = self.ns, self.nc
        r = problem.grid.resolution_s
        setup = problem.settings.setup_s
        rotator = problem.antennas[self.antenna].rotator
        lag, far = self.lag, self.far
        last_start = self.firsts + self.lengths - 1 - self.mins
        step = np.full(nc * ns, -1, dtype=np.int64)
        step[self.cell_of_point] = self.step_k
        can_start = np.zeros(nc * ns, dtype=bool)
        act = self.active
        can_start[act] = step[act] <= last_start[self.win[act]]
        can_end = act & (self.pmidx != self.neg_cell)
        if self.fixed.any():
            # A fixed window starts only at its first point and ends only at its last.
            fc = np.flatnonzero(act & self.fixed[np.maximum(self.win, 0)])
            wl = self.win[fc]
            can_start[fc] = step[fc] == self.firsts[wl]
            can_end[fc] = step[fc] == self.firsts[wl] + self.lengths[wl] - 1
        self.can_start = can_start
        self.can_end = can_end
        lags = list(range(lag, far))
        self.lags = lags
        nl = len(lags)
        # Slightly short reach so that an arc is never looser than the checker's travel.
        self.reach = (
            np.array([rotator.reach_deg(d * r - setup) for d in lags], dtype=np.float64).reshape(
                nl, 2
            )
            - 1e-4
        )
        # Far away from any angle for inactive cells (no NaN arithmetic).
        az = np.where(act, self.az, 1e6).astype(np.float32).reshape(nc, ns)
        el = np.where(act, self.el, 1e6).astype(np.float32).reshape(nc, ns)
        self.az32, self.el32 = az, el
        self._init_arcs()
        self._arcs_cache: _Arcs | None = None
        self._near: BoolArray | None = None
        self._kernel_inputs: tuple[Any, ...] | None = None
        self._near_bits: IntArray | None = None
        # Compiled sweeps run on this layout so far (the bits wait for the second).
        self.sweeps = 0
        self._cell_keys: tuple[IntArray, IntArray] | None = None

    @property
    def arcs(self) -> _Arcs:
        """Pruned handover arcs plus the start arcs (built on first use: the MILP's)."""
        if self._arcs_cache is None:
            self._arcs_cache = self._pruned_arcs()
        return self._arcs_cache

    def _pruned_arcs(self) -> _Arcs:
        """Earliest arrivals as explicit arcs, pruned by dominance (see the module doc)."""
        problem = self.problem
        ns, nc = self.ns, self.nc
        lag, lags, nl, reach = self.lag, self.lags, len(self.lags), self.reach
        az, el = self.az32, self.el32
        cs2 = self.can_start.reshape(nc, ns)
        ce2 = self.can_end.reshape(nc, ns)
        win2 = self.win.reshape(nc, ns)
        weights = np.array([sat.weight for sat in problem.satellites])
        wt2 = np.where(self.sat >= 0, weights[np.maximum(self.sat, 0)], 0.0).reshape(nc, ns)
        sw = self.src_weights
        swt2 = np.where(self.sat >= 0, sw[np.maximum(self.sat, 0)], 0.0).reshape(nc, ns)
        prune = self.prune
        chunk = max(8, 3_000_000 // max(1, ns * ns * max(1, nl)))
        src_parts: list[IntArray] = []
        dst_parts: list[IntArray] = []
        lag_arr = np.asarray(lags, dtype=np.int64)
        for k0 in range(lag, nc, chunk):
            k1 = min(nc, k0 + chunk)
            rows = k1 - k0
            emit = np.zeros((rows, ns, nl, ns), dtype=bool)
            prev_full: npt.NDArray[np.bool_] | None = None
            # Destination rows k0-1 .. k1 (a halo row on each side); row i is k0-1+i.
            kk1 = min(nc, k1 + 1)
            same_tgt_prev = win2[k0:k1, :, None] == win2[k0 - 1 : k1 - 1, :, None]
            nn = kk1 - k0 - 1  # rows whose next destination row exists
            tgt_next = np.zeros((rows, ns, 1), dtype=bool)
            if nn > 0:
                tgt_next[:nn] = (win2[k0 + 1 : k0 + 1 + nn] == win2[k0 : k0 + nn])[:, :, None]
            for li, d in enumerate(lags):
                full = np.zeros((rows + 2, ns, ns), dtype=bool)
                r0 = max(k0 - 1, d)
                if r0 < kk1:
                    ok = np.abs(az[r0:kk1, :, None] - az[r0 - d : kk1 - d, None, :]) <= reach[li, 0]
                    ok &= (
                        np.abs(el[r0:kk1, :, None] - el[r0 - d : kk1 - d, None, :]) <= reach[li, 1]
                    )
                    ok &= cs2[r0:kk1, :, None]
                    ok &= ce2[r0 - d : kk1 - d, None, :]
                    full[r0 - (k0 - 1) : kk1 - (k0 - 1)] = ok
                cur = full[1 : rows + 1]
                out = cur.copy()
                if prev_full is not None:
                    # The same source reached the same window a column earlier at the
                    # previous lag: the antenna follows the satellite from there.
                    out &= ~(prev_full[:rows] & same_tgt_prev)
                if prune:
                    # Dominated by the same window's next point as source: it ends one
                    # step later (worth at least as much) and arrives no later, or one
                    # step later at a satellite worth no more per step.
                    j0 = k0 - d
                    js = np.arange(j0, j0 + rows)
                    valid = js >= 0
                    jc = np.clip(js, 0, nc - 2)
                    src_cont = (win2[jc + 1] == win2[jc]) & (win2[jc] >= 0) & valid[:, None]
                    src_cont = src_cont[:, None, :]
                    dom = np.zeros_like(out)
                    if prev_full is not None:
                        dom |= prev_full[1 : rows + 1]
                    heavier = swt2[jc][:, None, :] >= wt2[k0:k1][:, :, None]
                    dom |= full[2 : rows + 2] & tgt_next & heavier
                    out &= ~(dom & src_cont)
                emit[:, :, li, :] = out
                prev_full = full
            hit = np.flatnonzero(emit)
            if len(hit) == 0:
                continue
            kr, rest = np.divmod(hit, ns * nl * ns)
            s2, rest = np.divmod(rest, nl * ns)
            li_, s1 = np.divmod(rest, ns)
            dcol = k0 + kr
            dst_parts.append(dcol * ns + s2)
            src_parts.append((dcol - lag_arr[li_]) * ns + s1)
        dst = np.concatenate(dst_parts) if dst_parts else np.empty(0, dtype=np.int64)
        src = np.concatenate(src_parts) if src_parts else np.empty(0, dtype=np.int64)
        # Merge the few start arcs into the destination order.
        init = self.init_arcs.dst
        pos = np.searchsorted(dst, init, side="left")
        dst = np.insert(dst, pos, init)
        src = np.insert(src, pos, np.full(len(init), self.zero_cell, dtype=np.int64))
        return _Arcs.build(src, dst, nc, ns)

    def _init_arcs(self) -> None:
        """Start arcs from park, and the sweep's idle floor."""
        problem = self.problem
        ns, nc = self.ns, self.nc
        r = problem.grid.resolution_s
        rotator = problem.antennas[self.antenna].rotator
        # From the park position at the start (or already on a kept track). Windows
        # with points after G0 are reachable there from anywhere: the idle floor of the
        # sweep covers those, so only earlier points need an arc.
        ant = problem.antennas[self.antenna]
        g0 = problem.initial_far_steps(self.antenna)
        self.g0 = g0
        init_dst: list[int] = []
        # Only kept and fixed windows and those starting before G0 need an arc.
        early = np.flatnonzero(self.firsts < g0) if not self.fixed.any() else None
        todo = range(len(self.windows)) if early is None else early.tolist()
        for li in todo:
            w = problem.windows[self.windows[li]]
            if w.kind == "kept":
                init_dst.append(int(self.cell_of_point[self.point_offset[li]]))
                continue
            if w.first >= g0 and not w.fixed:
                continue
            t = rotator.travel_s(ant.park_az_deg, ant.park_el_deg, w.az_rot_deg, w.el_rot_deg)
            ks = w.first + np.arange(len(w.az_rot_deg))
            ok = problem.settings.pre_pass_s + t - EPS_S <= ks * r
            pts = np.flatnonzero(ok & (ks <= w.last - w.min_steps))
            if w.fixed:
                pts = pts[pts == 0]
            if len(pts):
                init_dst.append(int(self.cell_of_point[self.point_offset[li] + pts[0]]))
        init = np.array(sorted(init_dst), dtype=np.int64)
        self.init_arcs = _Arcs.build(
            np.full(len(init), self.zero_cell, dtype=np.int64), init, nc, ns
        )
        # The sweep's idle floor: from G0 on, any window is reachable from park.
        self.floor = np.where(np.arange(nc) >= g0 - self.far, 0.0, NEG)

    def near_stack(self, precompute: bool = True) -> Callable[[int, int], BoolArray]:
        """``f(ka, kb)``: (rows ka..kb, dst slot, lag x src slot), every lag at once (the
        sweep takes one maximum over all of them); False where ``k - d < 0``. The lags
        are in decreasing order, so that the source rows ``k - G + 1 .. k - L`` of row
        ``k`` are one contiguous stretch of the DP's end values (the sweep reads them
        through a strided view instead of gathering them).

        Precomputed when it fits in memory and ``precompute`` (the numpy sweep runs many
        DPs on one layout), else evaluated per block (the compiled sweep checks the reach
        itself, and the backtrack reads a row per track).
        """
        if self._near is not None:
            pre = self._near
            return lambda ka, kb: pre[ka:kb]
        nc, ns = self.nc, self.ns
        az, el, reach, lags = self.az32, self.el32, self.reach, self.lags
        nl = len(lags)

        rot = self.problem.antennas[self.antenna].rotator
        # An axis whose reach covers its whole range needs no check (inactive cells
        # then pass too, harmlessly: they neither end nor start a track).
        span = (rot.az_max_deg - rot.az_min_deg, rot.el_max_deg - rot.el_min_deg)
        # Only cells that may start a track receive a near handover (the sweep relies on
        # that instead of masking its arrivals again).
        cs2 = self.can_start.reshape(nc, ns)

        def block(ka: int, kb: int, out: BoolArray | None = None) -> BoolArray:
            if out is None:
                out = np.zeros((kb - ka, ns, nl * ns), dtype=bool)
            diff = np.empty((kb - ka, ns, ns), dtype=np.float32)
            for li, d in enumerate(lags):
                r0 = max(ka, d)
                if r0 >= kb:
                    continue
                col = nl - 1 - li
                ok = out[r0 - ka :, :, col * ns : (col + 1) * ns]
                np.copyto(ok, cs2[r0:kb, :, None])
                buf = diff[: kb - r0]
                for axis, ang in ((0, az), (1, el)):
                    if reach[li, axis] < span[axis] + 1e-3:
                        # In place, in cache-sized chunks: this runs once per antenna
                        # class over (grid points x slots x lags x slots) cells.
                        np.subtract(ang[r0:kb, :, None], ang[r0 - d : kb - d, None, :], out=buf)
                        np.abs(buf, out=buf)
                        ok &= buf <= np.float32(reach[li, axis])
            return out

        if precompute and nl * nc * ns * ns <= _NEAR_CELLS_MAX:
            pre = np.zeros((nc, ns, nl * ns), dtype=bool)
            rows = max(16, 200_000 // max(1, ns * ns))
            for k0 in range(0, nc, rows):
                k1 = min(nc, k0 + rows)
                block(k0, k1, pre[k0:k1])
            self._near = pre
            return lambda ka, kb: pre[ka:kb]
        return block

    def kernel_inputs(self) -> tuple[Any, ...]:
        """What the compiled sweep reads besides the values (see :mod:`._kernels`):
        lags, can_start, active, pmidx, park arrivals, idle floor, pointing, reach and
        which axes need a check (as :meth:`near_stack` decides)."""
        if self._kernel_inputs is None:
            rot = self.problem.antennas[self.antenna].rotator
            span = np.array([rot.az_max_deg - rot.az_min_deg, rot.el_max_deg - rot.el_min_deg])
            is_init = np.zeros(self.nc * self.ns, dtype=bool)
            is_init[self.init_arcs.dst] = True
            self._kernel_inputs = (
                np.asarray(self.lags, dtype=np.int64),
                self.can_start,
                self.active,
                self.pmidx,
                is_init,
                np.ascontiguousarray(self.floor, dtype=np.float64),
                self.az32.ravel(),
                self.el32.ravel(),
                self.reach.astype(np.float32).reshape(-1, 2),
                (self.reach < span[None, :] + 1e-3).reshape(-1, 2),
            )
        return self._kernel_inputs

    def near_bits(self) -> IntArray:
        """The compiled sweep's reach table (:func:`._kernels.near_bits`): per cell and
        lag (increasing), the slots of the source row the rotator reaches from there, as
        bits; computed once per layout, like the numpy sweep's :meth:`near_stack`. Empty
        (no rows) when the slots do not fit in the bits or the table is too large: the
        sweep then compares the angles itself (the same comparisons, so the same arrays).
        The first sweep of a layout goes without (see :func:`_sweep_compiled`).
        """
        if self._near_bits is None:
            nl = len(self.lags)
            size = self.nc * self.ns
            if self.ns <= _kernels.BITS_MAX_SLOTS and 0 < 8 * size * nl <= _NEAR_BITS_MAX:
                bits = np.empty((size, nl), dtype=np.int64)
                _kernels.near_bits(self.nc, self.ns, self.kernel_inputs(), bits)
            else:
                bits = np.zeros((0, max(nl, 1)), dtype=np.int64)
            self._near_bits = bits
        return self._near_bits

    def cell_keys(self) -> tuple[IntArray, IntArray]:
        """Per cell, the flat (satellite, grid point) index of the step it opens, and
        of its point; -1 where none (what the compiled values kernel reads)."""
        if self._cell_keys is None:
            size = self.nc * self.ns
            price_sk = np.full(size, -1, dtype=np.int64)
            price_sk[self.step_idx] = self.step_sk
            act_sk = np.full(size, -1, dtype=np.int64)
            act_sk[self.act_idx] = self.act_sk
            self._cell_keys = (price_sk, act_sk)
        return self._cell_keys

    def near_row(self, k: int, s: int) -> BoolArray:
        """Row ``(k, s)`` of :meth:`near_stack` as (lags, slots), lags decreasing: which
        track ends at ``(k - d, s1)`` may hand over to ``(k, s)`` (what the backtrack
        reads once per track; the same float32 checks as the stack)."""
        lags, ns = self.lags, self.ns
        nl = len(lags)
        lag_dec = np.asarray(lags[::-1], dtype=np.int64)
        rows = k - lag_dec
        ok = np.zeros((nl, ns), dtype=bool)
        ok[rows >= 0] = bool(self.can_start[k * ns + s])
        rows = np.maximum(rows, 0)
        _, _, _, _, _, _, az, el, reach32, check = self.kernel_inputs()
        for axis, ang in ((0, az), (1, el)):
            chk = check[::-1, axis]
            if not chk.any():
                continue
            angles = ang.reshape(self.nc, ns)
            diff = np.abs(angles[rows] - angles[k, s])
            ok &= ~chk[:, None] | (diff <= reach32[::-1, axis][:, None])
        return ok

    @property
    def n_arcs(self) -> int:
        """Handover and start arcs."""
        return len(self.arcs.src)

    def extra_arcs(self, cells: IntArray) -> _Arcs:
        """The base arcs plus every earliest arrival from ``cells`` (no pruning)."""
        ns, nc = self.ns, self.nc
        cells = _sorted_unique(cells[self.can_end[cells]])
        if len(cells) == 0:
            return self.arcs
        j, s1 = np.divmod(cells, ns)
        a1 = self.az32[j, s1][:, None]
        e1 = self.el32[j, s1][:, None]
        win2 = self.win.reshape(nc, ns)
        cs2 = self.can_start.reshape(nc, ns)
        found = np.full((len(cells), ns), -1, dtype=np.int64)
        srcs: list[IntArray] = []
        dsts: list[IntArray] = []
        for li, d in enumerate(self.lags):
            k = j + d
            valid = k < nc
            kc = np.minimum(k, nc - 1)
            w2 = win2[kc]
            ok = np.abs(self.az32[kc] - a1) <= self.reach[li, 0]
            ok &= np.abs(self.el32[kc] - e1) <= self.reach[li, 1]
            ok &= cs2[kc] & valid[:, None] & (w2 != found)
            ci, si = np.nonzero(ok)
            srcs.append(cells[ci])
            dsts.append(k[ci] * ns + si)
            found = np.where(ok, w2, found)
        src = np.concatenate(srcs)
        dst = np.concatenate(dsts)
        order = np.argsort(dst, kind="stable")
        src, dst = src[order], dst[order]
        base = self.arcs
        pos = np.searchsorted(base.dst, dst, side="left")
        return _Arcs.build(np.insert(base.src, pos, src), np.insert(base.dst, pos, dst), nc, ns)

    # -- values ---------------------------------------------------------------------
    def values(self, step_value: FloatArray, blocked: BoolArray | None) -> tuple[FloatArray, bool]:
        """``dsub = cum - OFF * run`` per cell from per-cell step values and blocked steps.

        A blocked step (tracked elsewhere) cuts the window into runs; the run offset makes
        the running maximum prefer a start in the end's own run, and an end whose best
        start lies in an earlier run comes out hugely negative and is discarded.
        """
        ns, nc = self.ns, self.nc
        idx, first = self.act_idx, self.act_first
        v = np.where(self.active, step_value, 0.0)
        # cs[ns + c] = running sum down the column of cell c (cs[:ns] = 0), in place.
        cs = np.zeros((nc + 1) * ns)
        np.cumsum(v.reshape(nc, ns), axis=0, out=cs[ns:].reshape(nc, ns))
        # cum(k) = sum of values of steps first..k-1 of the window.
        cum = np.zeros(nc * ns)
        cum[idx] = cs[idx] - cs[first]
        if blocked is None:
            return cum, False
        b = blocked[idx]
        if not b.any():
            return cum, False
        # The same for the blocked steps, counted in integers (exact).
        bs = np.zeros((nc + 1) * ns, dtype=np.int64)
        bc = np.zeros(nc * ns, dtype=np.int64)
        bc[idx[b]] = 1
        np.cumsum(bc.reshape(nc, ns), axis=0, out=bs[ns:].reshape(nc, ns))
        cum[idx] -= _RUN_OFFSET * (bs[idx] - bs[first])
        return cum, True


# -- the DP sweep --------------------------------------------------------------------------


@dataclass
class _DPState:
    value: float
    sv: FloatArray
    pm: FloatArray
    ef: FloatArray
    be: FloatArray
    colmax: FloatArray
    dsub: FloatArray


def _sweep_many(lay: _Layout, dsubs: FloatArray, runs: bool) -> list[_DPState]:
    """Independent longest paths of one antenna layout, one per row of ``dsubs``, in one
    sweep: the block loop's Python overhead is shared (two DPs cost much less than two
    sweeps)."""
    if _kernels.available():
        return _sweep_compiled(lay, dsubs, runs)
    ns, nc = lay.ns, lay.nc
    size = nc * ns
    nb = dsubs.shape[0]
    sv = np.full((nb, size + 2), NEG)
    pm = np.full((nb, size + 2), NEG)
    g = lay.far
    lags = lay.lags
    n_lags = len(lags)
    # End values with G - 1 rows of NEG in front: the sources of row k's near handovers
    # (rows k - G + 1 .. k - L, lags in decreasing order as in near_stack) are then the
    # contiguous stretch efp[k * ns : (k + n_lags) * ns], read through a strided view.
    pad = (g - 1) * ns if n_lags else 0
    efp = np.full((nb, pad + size + 2), NEG)
    ef = efp[:, pad:]
    ef[:, lay.zero_cell] = 0.0
    be = np.full((nb, nc + g), NEG)
    # be[k] is the best end at k - g; from G0 on the antenna may also come from park.
    be[:, min(lay.g0, g) : g] = 0.0
    colmax = np.full((nb, nc), NEG)
    S = sv[:, :size].reshape(nb, nc, ns)
    P = pm[:, :size].reshape(nb, nc, ns)
    E = ef[:, :size].reshape(nb, nc, ns)
    D = dsubs.reshape(nb, nc, ns)
    inact = ~lay.active.reshape(nc, ns)
    init = lay.init_arcs
    asrc, useg, udst = init.src, init.useg, init.udst
    ucol = init.ucol.tolist()
    pmidx = lay.pmidx.reshape(nc, ns)
    half = -_RUN_OFFSET / 2
    floor = lay.floor
    near = lay.near_stack()
    e_lag = np.lib.stride_tricks.as_strided(
        efp,
        shape=(nb, nc, 1, max(1, n_lags) * ns),
        strides=(efp.strides[0], ns * 8, 0, 8),
        writeable=False,
    )

    def starts(ka: int, kb: int) -> None:
        # Arrivals: from park, then every near handover (lag L..G-1, the rotator's
        # reach checked densely), then the far handovers (the running best end).
        u0, u1 = ucol[ka], ucol[kb]
        if u1 > u0:
            a0, a1 = int(useg[u0]), int(useg[u1])
            red = np.maximum.reduceat(ef[:, asrc[a0:a1]], useg[u0:u1] - a0, axis=1)
            sv[:, udst[u0:u1]] = red
        blk = S[:, ka:kb]
        if n_lags:
            # Every near handover at once: the ends at k - d for each lag d, side by
            # side, masked by the rotator's reach (rows with k - d < 0 are masked out)
            # and by the destination's start (so are the park arrivals above).
            cand = np.where(near(ka, kb), e_lag[:, ka:kb], NEG).max(axis=3)
            np.maximum(blk, cand, out=blk)
        np.maximum(blk, be[:, ka:kb, None], out=blk)
        lo = ka - 1 if ka > 0 else 0
        if runs:
            # The antenna may wait on the satellite across a blocked stretch: carry the
            # best arrival down the window (S). Without blocked steps a start right at
            # its arrival is never worse (values per step are >= 0), so S is not needed.
            np.maximum.accumulate(S[:, lo:kb], axis=1, out=S[:, lo:kb])
            np.copyto(blk, NEG, where=inact[ka:kb])
        pb = P[:, ka:kb]
        np.subtract(blk, D[:, ka:kb], out=pb)
        np.maximum.accumulate(P[:, lo:kb], axis=1, out=P[:, lo:kb])
        np.copyto(pb, NEG, where=inact[ka:kb])

    def ends(k0: int, k1: int) -> None:
        eb = E[:, k0:k1]
        np.add(pm[:, pmidx[k0:k1]], D[:, k0:k1], out=eb)
        if runs:
            np.copyto(eb, NEG, where=eb < half)
        cm = eb.max(axis=2, out=colmax[:, k0:k1])
        np.maximum(cm, floor[k0:k1], out=be[:, g + k0 : g + k1])
        np.maximum.accumulate(be[:, g + k0 - 1 : g + k1], axis=1, out=be[:, g + k0 - 1 : g + k1])

    # Ends of [k0, k0+B) need starts up to k0+L-1; starts of [k0+L, k0+L+B) need ends
    # up to k0+B-1 (B = L + m_min): two vectorised phases per block, no dependency
    # inside either.
    blen = lay.block
    lag = lay.lag
    starts(0, min(nc, lag))
    for k0 in range(0, nc, blen):
        k1 = min(nc, k0 + blen)
        ends(k0, k1)
        sa, sb = min(nc, k0 + lag), min(nc, k0 + lag + blen)
        if sa < sb:
            starts(sa, sb)
    out: list[_DPState] = []
    for b in range(nb):
        best = float(colmax[b].max()) if nc else NEG
        out.append(_DPState(max(best, 0.0), sv[b], pm[b], ef[b], be[b], colmax[b], dsubs[b]))
    return out


def _sweep_compiled(lay: _Layout, dsubs: FloatArray, runs: bool) -> list[_DPState]:
    """:func:`_sweep_many` by the compiled kernel: the same arrays, cell by cell."""
    ns, nc = lay.ns, lay.nc
    size = nc * ns
    nb = dsubs.shape[0]
    g = lay.far
    # The kernel writes every cell; only the two sentinels and the park prefix of
    # ``be`` need values first (filling whole arrays cost about 10 ms per DP).
    sv = np.empty((nb, size + 2))
    pm = np.empty((nb, size + 2))
    ef = np.empty((nb, size + 2))
    for arr in (sv, pm, ef):
        arr[:, size:] = NEG
    ef[:, lay.zero_cell] = 0.0
    be = np.empty((nb, nc + g))
    be[:, :g] = NEG
    be[:, min(lay.g0, g) : g] = 0.0
    colmax = np.empty((nb, nc))
    d = np.ascontiguousarray(dsubs, dtype=np.float64)
    # The reach bits from a layout's second sweep on: a single DP (one antenna, or
    # antennas that need no coupling) would pay the table (about 21 ms on the 7-day
    # bench) for a sweep only about 8 ms faster; from the second sweep on it pays.
    bits = lay.near_bits() if lay.sweeps else _NO_BITS
    lay.sweeps += 1
    _kernels.sweep(
        d,
        runs,
        -_RUN_OFFSET / 2,
        nc,
        ns,
        g,
        lay.kernel_inputs(),
        sv,
        pm,
        ef,
        be,
        colmax,
        bits,
    )
    out: list[_DPState] = []
    for b in range(nb):
        best = float(colmax[b].max()) if nc else NEG
        out.append(_DPState(max(best, 0.0), sv[b], pm[b], ef[b], be[b], colmax[b], d[b]))
    return out


def _backtrack(lay: _Layout, st: _DPState) -> list[tuple[int, int, int]]:
    """(local window, start point, end point) of the best path, in time order."""
    ns = lay.ns
    size = lay.nc * ns
    ef, sv, dsub = st.ef, st.sv, st.dsub
    if st.value <= 0.0 and not (ef[:size] >= 0).any():
        return []
    cur = int(np.argmax(ef[:size]))
    if ef[cur] < 0:
        return []
    if _kernels.available():
        _, can_start, _, pmidx, is_init, _, az, el, reach32, check = lay.kernel_inputs()
        rows = _kernels.backtrack(
            cur,
            ns,
            lay.lag,
            lay.far,
            lay.g0,
            lay.zero_cell,
            lay.win,
            lay.mins,
            lay.firsts,
            pmidx,
            can_start,
            is_init,
            az,
            el,
            reach32,
            check,
            sv,
            st.pm,
            ef,
            dsub,
            st.be,
            st.colmax,
        )
        if len(rows) and rows[-1, 0] < 0:
            what = "the start of a track" if rows[-1, 1] == 0 else "a handover"
            raise AssertionError(f"DP backtrack lost {what}")
        return [(int(w), int(i), int(j)) for w, i, j in rows[::-1].tolist()]
    out: list[tuple[int, int, int]] = []
    g = lay.far
    init = lay.init_arcs
    n_lags = len(lay.lags)
    for _ in range(lay.nc * 2 + 10):
        w = int(lay.win[cur])
        j, s = divmod(cur, ns)
        m = int(lay.mins[w])
        first = int(lay.firsts[w])
        target = st.pm[lay.pmidx[cur]]
        ks = np.arange(first, j - m + 1)
        cells = ks * ns + s
        dvals = sv[cells] - dsub[cells]
        hit = np.flatnonzero(dvals == target)
        if len(hit) == 0:
            raise AssertionError("DP backtrack lost the start of a track")
        i_star = int(ks[hit[0]])
        out.append((w, i_star, j))
        v = sv[i_star * ns + s]
        ks2 = np.arange(first, i_star + 1)
        i2 = int(ks2[np.flatnonzero(sv[ks2 * ns + s] == v)[0]])
        dcell = i2 * ns + s
        # Which arrival fed this start: park, a near handover, or a far one?
        src: int | None = None
        u = int(np.searchsorted(init.udst, dcell))
        if u < len(init.udst) and init.udst[u] == dcell and v == 0.0:
            src = lay.zero_cell
        hi = i2 - lay.lag  # source row of the shortest near handover
        if src is None and lay.can_start[dcell] and n_lags and hi >= 0:
            # Every near handover into this start at once (the sources of lags G-1 .. L
            # are the rows i2-G+1 .. i2-L, as in the sweep); the first match by
            # increasing lag, then slot.
            lo = max(0, i2 - g + 1)
            # The sweep's precomputed stack when there is one (a view), else one row.
            pre = lay._near
            row = lay.near_row(i2, s) if pre is None else pre[i2, s].reshape(n_lags, ns)
            mask = row[lo - (i2 - g + 1) :]
            ok = mask & (ef[lo * ns : (hi + 1) * ns].reshape(-1, ns) == v)
            hit = np.flatnonzero(ok[::-1].ravel())
            if len(hit):
                back, slot = divmod(int(hit[0]), ns)
                src = (hi - back) * ns + slot
        if src is None and st.be[i2] == v:
            cols = np.flatnonzero(st.colmax[: max(0, i2 - g + 1)] == v)
            if len(cols):
                c = int(cols[0])
                row = ef[c * ns : (c + 1) * ns]
                src = c * ns + int(np.flatnonzero(row == v)[0])
            elif v == 0.0 and i2 >= lay.g0:
                src = lay.zero_cell  # idle since the start: first track, from park
        if src is None:
            raise AssertionError("DP backtrack lost a handover")
        if src == lay.zero_cell:
            break
        cur = src
    out.reverse()
    return out


# -- solving ---------------------------------------------------------------------------------


def _antenna_classes(problem: Problem) -> list[list[int]]:
    """Antennas whose windows are identical (same station, rotator, limits, bands)."""
    sig: dict[tuple[object, ...], list[int]] = {}
    for i, a in enumerate(problem.antennas):
        key = (
            a.station_id,
            a.rotator,
            a.min_el_deg,
            a.bands_hz,
            a.unavailable,
            a.park_az_deg,
            a.park_el_deg,
        )
        sig.setdefault(key, []).append(i)
    return list(sig.values())


class _Solver:
    """Layouts (geometry) per antenna class and the per-antenna DP runs."""

    def __init__(self, problem: Problem) -> None:
        self.p = problem
        n_sats = len(problem.satellites)
        self.weights = np.array([s.weight for s in problem.satellites])
        # Per-window keys, read once (tens of thousands of windows).
        ws = problem.windows
        n_w = len(ws)
        # One pass over the windows' attributes (five generator passes took about
        # twice as long, measured); columns: antenna, satellite, first, length, fixed.
        flat: list[int] = []
        put = flat.extend
        for w in ws:
            put((w.antenna, w.sat, w.first, len(w.az_rot_deg), w.kind != "pass"))
        # One flat list: a list of tuples took about twice as long (measured).
        keys = np.array(flat, dtype=np.int64).reshape(n_w, 5)
        self.win_ant = np.ascontiguousarray(keys[:, 0])
        self.win_key = np.ascontiguousarray(keys[:, 1:4])
        self.win_fixed = keys[:, 4].astype(bool)
        by_ant = np.argsort(self.win_ant, kind="stable")
        cuts = np.searchsorted(self.win_ant[by_ant], np.arange(len(problem.antennas) + 1))
        self.by_antenna: list[list[int]] = [
            by_ant[cuts[a] : cuts[a + 1]].tolist() for a in range(len(problem.antennas))
        ]
        coupled = problem.settings.one_antenna_per_satellite and len(problem.antennas) > 1
        # The lightest weight: where the Lagrangian caps prices (see solve_optimal).
        # The MILP's pruned arcs also assume step values no lower (plain values).
        self.w_floor = float(self.weights.min()) if n_sats else 0.0
        self.priceable = coupled
        src_w = np.full(n_sats, self.w_floor) if coupled else self.weights.copy()
        if coupled:
            src_w = np.minimum(src_w, self.weights)
        self.layouts: dict[int, _Layout] = {}
        self.layout_map: dict[int, tuple[int, IntArray]] = {}
        for cls in _antenna_classes(problem):
            base = cls[0]
            base_ws = self.by_antenna[base]
            has_fixed = any(bool(self.win_fixed[self.by_antenna[a]].any()) for a in cls)
            base_sig = self._signature(base)
            shared = not has_fixed and all(self._same_windows(a, base_sig) for a in cls[1:])
            if shared:
                lay = _Layout(problem, base, base_ws, src_w)
                self.layouts[base] = lay
                for a in cls:
                    self.layout_map[a] = (base, np.array(self.by_antenna[a], dtype=np.int64))
            else:
                for a in cls:
                    self.layouts[a] = _Layout(problem, a, self.by_antenna[a], src_w)
                    self.layout_map[a] = (a, np.array(self.by_antenna[a], dtype=np.int64))
        # More than any plan is worth (each window's whole value, twice over).
        r = problem.grid.resolution_s
        self.bonus = 1.0 + 2.0 * float(
            np.sum(self.weights[self.win_key[:, 0]] * r * (self.win_key[:, 2] - 1))
        )
        self._plain: dict[int, tuple[FloatArray, FloatArray]] = {}
        self._class_steps: dict[int, tuple[IntArray, FloatArray, IntArray]] = {}
        # What _initial_prices computed (read-only, shared by its callers).
        self.first_prices: FloatArray | None = None
        self._priced_cells: IntArray | None = None
        self._price_pos: dict[int, IntArray] = {}
        self._pooled: dict[tuple[int, ...], tuple[IntArray, FloatArray, IntArray]] = {}
        self._cell_slot: npt.NDArray[np.signedinteger[Any]] | None = None

    def class_steps(self, lid: int) -> tuple[IntArray, FloatArray, IntArray]:
        """The (satellite, step) pairs layout ``lid`` can track (flat indices into a
        satellites x grid points array, sorted), for each the steps of the longest window
        tracking it there (what the handover discount of the prices spreads over), and
        its position in :meth:`priced_cells`.
        """
        got = self._class_steps.get(lid)
        if got is None:
            lay = self.layouts[lid]
            # One sort of (pair, span) keys: the last of each pair's run has its longest
            # span (much faster than a ufunc.at maximum, measured).
            spans = lay.lengths[lay.win[lay.step_idx]] - 1
            top = int(spans.max()) + 1 if len(spans) else 1
            keys = np.sort(lay.step_sk * top + spans)
            pair = keys // top
            # (No pair at all: an antenna without a window of two points or more.)
            last = np.flatnonzero(np.append(pair[1:] != pair[:-1], len(pair) > 0))
            sk = pair[last].astype(np.int64)
            span = (keys[last] % top).astype(np.float64)
            pos = np.searchsorted(self.priced_cells(), sk).astype(np.int64)
            got = self._class_steps[lid] = (sk, span, pos)
        return got

    def pooled_steps(self, lids: tuple[int, ...]) -> tuple[IntArray, FloatArray, IntArray]:
        """:meth:`class_steps` of the layouts ``lids`` together: the (satellite, step) pairs
        any of them can track, each with the longest span among them."""
        got = self._pooled.get(lids)
        if got is None:
            n_cells = len(self.priced_cells())
            span = np.zeros(n_cells)
            has = np.zeros(n_cells, dtype=bool)
            for lid in lids:
                _, sp, pos = self.class_steps(lid)
                # Each pair once per layout: a plain gather and scatter is exact here.
                span[pos] = np.maximum(span[pos], sp)
                has[pos] = True
            pos_all = np.flatnonzero(has).astype(np.int64)
            got = self._pooled[lids] = (self.priced_cells()[pos_all], span[pos_all], pos_all)
        return got

    def price_pos(self, lid: int) -> IntArray:
        """Per cell of layout ``lid``: where the step it opens is in :meth:`priced_cells`
        (-1 where none), i.e. :meth:`_Layout.cell_keys`'s price keys for prices given
        on the priced cells only."""
        got = self._price_pos.get(lid)
        if got is None:
            price_sk = self.layouts[lid].cell_keys()[0]
            got = np.full(len(price_sk), -1, dtype=np.int64)
            has = price_sk >= 0
            got[has] = self.cell_slot()[price_sk[has]]
            self._price_pos[lid] = got
        return got

    def cell_slot(self) -> npt.NDArray[np.signedinteger[Any]]:
        """Per flat (satellite, grid point) index: its position in :meth:`priced_cells`
        (a gather through it is much faster than a search of unsorted keys, measured);
        undefined at other indices."""
        if self._cell_slot is None:
            size = len(self.p.satellites) * (self.p.grid.n_steps + 1)
            # Uninitialised elsewhere: only priced cells are ever looked up (the steps a
            # layout's cells open, and the first steps of the DPs' tracks, all among
            # them); filling tens of megabytes with -1 cost about 30 ms (measured).
            slot: npt.NDArray[np.signedinteger[Any]] = np.empty(
                size, dtype=np.int32 if size < 2**31 else np.int64
            )
            cells = self.priced_cells()
            slot[cells] = np.arange(len(cells))
            self._cell_slot = slot
            return slot
        return self._cell_slot

    def dense_prices(self, on_cells: FloatArray, out: FloatArray | None = None) -> FloatArray:
        """(satellites x grid points) prices from prices on :meth:`priced_cells` (0
        elsewhere), into ``out`` when given."""
        if out is None:
            out = np.zeros((len(self.p.satellites), self.p.grid.n_steps + 1))
        out.ravel()[self.priced_cells()] = on_cells
        return out

    def priced_cells(self) -> IntArray:
        """Flat (satellite, grid point) indices some layout can track, sorted: where
        coupling prices matter (the DPs read them nowhere else)."""
        if self._priced_cells is None:
            self._priced_cells = _sorted_unique(
                np.concatenate([lay.step_sk for lay in self.layouts.values()])
            )
        return self._priced_cells

    def _signature(self, antenna: int) -> tuple[IntArray, list[Plan]]:
        """What makes two antennas' windows the same: satellite, first point, length, plan."""
        idx = self.by_antenna[antenna]
        ws = self.p.windows
        return self.win_key[idx], [ws[i].plan for i in idx]

    def _same_windows(self, antenna: int, base: tuple[IntArray, list[Plan]]) -> bool:
        """True when ``antenna`` has exactly the windows of the signature ``base``."""
        keys, plans = self._signature(antenna)
        return (
            keys.shape == base[0].shape
            and bool(np.array_equal(keys, base[0]))
            # Identical antennas' windows share their plan objects: `is` settles most.
            and all(a is b or a == b for a, b in zip(plans, base[1], strict=True))
        )

    def trackable(self, layout_ids: Iterable[int] | None = None) -> BoolArray:
        """(satellites x grid points): True where a window of the given layouts (all by
        default) can track the step ``[k, k + 1]``; what :func:`_trackable` computes
        from the windows, read off the layouts' cells instead."""
        p = self.p
        out = np.zeros((len(p.satellites), p.grid.n_steps + 1), dtype=bool)
        for lid in self.layouts if layout_ids is None else layout_ids:
            lay = self.layouts[lid]
            out.ravel()[lay.step_sk] = True
        return out

    def max_price(self) -> FloatArray:
        """Per satellite: the highest useful coupling price per step (its whole value)."""
        return self.weights * self.p.grid.resolution_s

    def base_values(self, antenna: int, prices: FloatArray | None = None) -> FloatArray:
        """Per-cell step values: weight x resolution, minus prices, plus bonuses.

        ``prices`` is a (satellites x grid points) array of coupling prices.
        """
        p = self.p
        lid, _ = self.layout_map[antenna]
        lay = self.layouts[lid]
        if lid not in self._plain or p.keep_steps:
            r = p.grid.resolution_s
            val = np.zeros(lay.nc * lay.ns)
            idx = lay.act_idx
            val[idx] = self.weights[lay.sat[idx]] * r
            val[idx[lay.act_last]] = 0.0
            if p.keep_steps and p.keep_bonus > 0:
                for (ant, norad), steps in p.keep_steps.items():
                    si = p.sat_index.get(norad)
                    if ant != antenna or si is None:
                        continue
                    kk = np.fromiter(steps, dtype=np.int64)
                    sel = idx[(lay.sat[idx] == si) & ~lay.act_last]
                    val[sel[np.isin(sel // lay.ns, kk)]] += p.keep_bonus
            for li in np.flatnonzero(lay.fixed).tolist():
                val[lay.cell_of_point[lay.point_offset[li]]] += self.bonus
            if p.keep_steps:
                return self._priced(lay, val, prices)
            self._plain[lid] = (val, lay.values(val, None)[0])
        return self._priced(lay, self._plain[lid][0], prices)

    @staticmethod
    def _priced(lay: _Layout, val: FloatArray, prices: FloatArray | None) -> FloatArray:
        if prices is None:
            return val
        out = val.copy()
        out[lay.step_idx] -= prices.ravel()[lay.step_sk]
        return out

    def run_dp(
        self,
        antenna: int,
        prices: FloatArray | None = None,
        blocked_steps: npt.NDArray[np.bool_] | None = None,
    ) -> tuple[float, list[RawTrack]]:
        """Best plan of one antenna; ``blocked_steps[sat, k]`` forbids step k of that sat."""
        return self.run_dps(antenna, [prices], [blocked_steps])[0]

    def run_dps(
        self,
        antenna: int,
        price_list: Sequence[FloatArray | None],
        blocked_list: Sequence[npt.NDArray[np.bool_] | None] | None = None,
        *,
        on_cells: bool = False,
    ) -> list[tuple[float, list[RawTrack]]]:
        """:meth:`run_dp` for several (prices, blocked steps) pairs in one sweep.

        With blocked steps in any of them, the sweep runs in the mode that handles
        blocked stretches for all: exact for the others too (their values have no run
        offsets, so it only also lets the antenna wait on a satellite, which never pays
        with step values >= 0 and changes no optimum).

        With ``on_cells`` every price vector is given on :meth:`priced_cells` only (the
        Lagrangian's own vector): the same values, without a dense (satellites x grid
        points) array and its scattered reads.
        """
        lid, _ = self.layout_map[antenna]
        lay = self.layouts[lid]
        dsubs = np.empty((len(price_list), lay.nc * lay.ns))
        any_runs = False
        jit = _kernels.available()
        for i, prices in enumerate(price_list):
            steps = None if blocked_list is None else blocked_list[i]
            if steps is None and prices is None and lid in self._plain and not self.p.keep_steps:
                dsubs[i] = self._plain[lid][1]
                continue
            if jit:
                # Prices and blocked steps folded in by the compiled kernel: the same
                # values as below, without the dense intermediate arrays.
                price_sk, act_sk = lay.cell_keys()
                any_runs |= _kernels.values(
                    self.base_values(antenna, None),
                    _EMPTY_F if prices is None else prices.ravel(),
                    _EMPTY_B if steps is None else steps.ravel(),
                    self.price_pos(lid) if on_cells else price_sk,
                    act_sk,
                    lay.first_cell,
                    lay.nc,
                    lay.ns,
                    _RUN_OFFSET,
                    dsubs[i],
                )
                continue
            if on_cells and prices is not None:
                prices = self.dense_prices(prices)
            val = self.base_values(antenna, prices)
            blocked = _blocked_cells(lay, steps)
            dsubs[i], runs = lay.values(val, blocked)
            any_runs |= runs
        return [self._result(antenna, st) for st in _sweep_many(lay, dsubs, any_runs)]

    def _result(self, antenna: int, st: _DPState) -> tuple[float, list[RawTrack]]:
        """The plan of a finished sweep and its value (fixed windows' bonuses removed)."""
        lid, wmap = self.layout_map[antenna]
        lay = self.layouts[lid]
        tracks = [RawTrack(int(wmap[w]), i, j) for w, i, j in _backtrack(lay, st)]
        if not lay.fixed.any():
            return st.value, tracks
        n_fixed = sum(1 for t in tracks if self.p.windows[t.window].fixed)
        return st.value - n_fixed * self.bonus, tracks


def plain_value(problem: Problem, tracks: Sequence[RawTrack]) -> float:
    """Sum of weight x tracked seconds."""
    r = problem.grid.resolution_s
    return float(
        sum(
            problem.satellites[problem.windows[t.window].sat].weight * (t.end - t.start) * r
            for t in tracks
        )
    )


def _used_steps(problem: Problem, tracks: Sequence[RawTrack]) -> npt.NDArray[np.bool_]:
    """(satellites x grid points): True where some track covers the step."""
    used = np.zeros((len(problem.satellites), problem.grid.n_steps + 1), dtype=bool)
    for t in tracks:
        used[problem.windows[t.window].sat, t.start : t.end] = True
    return used


def _day_counts(
    problem: Problem, tracks: Sequence[RawTrack]
) -> dict[tuple[int, int], list[RawTrack]]:
    out: dict[tuple[int, int], list[RawTrack]] = {}
    for t in tracks:
        sat = problem.windows[t.window].sat
        out.setdefault((sat, problem.day_of(t.start)), []).append(t)
    return out


def solve_optimal(
    problem: Problem,
    *,
    gap_tol: float = 1e-9,
    max_iterations: int = 300,
    milp_max_vars: int = 60_000,
    milp_time_s: float = 60.0,
    deadline: Callable[[], bool] | None = None,
) -> SolveResult:
    """Best plan within the model: exact for one antenna, bounded for several.

    1. One DP per antenna class: without the coupling, exact when there is nothing to
       couple; with it, at the first Lagrangian prices, an upper bound.
    2. Antennas in turn, each avoiding the previous ones' steps, on prices re-computed
       for the antennas still to plan (plain values without the coupling): a feasible
       plan.
    3. If the gap exceeds ``gap_tol``: an exact MILP when the instance is small enough,
       else Lagrangian price iterations tightening the bound until ``deadline()``
       (polled between iterations; the bounded-time mode) or ``max_iterations``.

    ``upper_bound`` is valid in every case, and ``gap`` bounds the distance from the
    optimum.
    """
    solver = _Solver(problem)
    n_ant = len(problem.antennas)
    coupled = problem.settings.one_antenna_per_satellite and n_ant > 1
    stats: dict[str, float | int | str] = {
        "windows": len(problem.windows),
        "cells": sum(int(lay.active.sum()) for lay in solver.layouts.values()),
        "resolution_s": problem.grid.resolution_s,
        "iterations": 0,
    }
    # The Lagrangian's first prices, before anything else: one DP per antenna class
    # turns the loose "every antenna alone" bound into a useful one, so even a very
    # short time budget reports a meaningful gap.
    it = 0
    lam_max = solver.max_price()
    priced = solver.priceable and bool(lam_max.any())
    prices = np.zeros((len(problem.satellites), problem.grid.n_steps + 1))
    cap_sat = lam_max
    p_relaxed: list[tuple[float, list[RawTrack]]] = []
    # A valid bound found beside the subgradient's own (which steers its steps).
    side_bound = math.inf
    if priced:
        # Start at the marginal-value prices (see _initial_prices; on the bench they
        # bound 4 % above the plan for two antennas where pricing every trackable
        # step at its excess weight gave 7.5 %). With priorities, prices stay below a
        # satellite's excess over the lightest weight: the subgradient then converges
        # much faster (measured). With equal weights nothing would be left to price,
        # so prices may go up to the whole value.
        prices = _initial_prices(problem, solver)
        excess = lam_max - solver.w_floor * problem.grid.resolution_s
        if excess.any():
            cap_sat = excess
            prices = np.minimum(prices, excess[:, None])
        # Not subject to the deadline: the least work that gives a useful bound. Only
        # the priced DP: its bound is the one that counts (zero prices, every antenna
        # alone, bound the sum of each antenna's own optimum, far looser when antennas
        # compete), and the antennas in turn start from its plan (the plain DP beside
        # it in one sweep cost 0.8 more of a sweep, measured).
        it += 1
        relaxed = p_relaxed = _relaxed(solver, prices)
        upper = sum(v for v, _ in p_relaxed) + float(prices.sum())
        if len(_antenna_classes(problem)) > 1:
            # Several classes (stations): also the bound at the pooled prices (see
            # _pooled_prices). Only a bound: the subgradient and the antennas in turn go
            # on from the first prices, as without it. A layout none of whose cells
            # changed price has the same DP as at the first prices: only the others run
            # again (on the bench, the two European stations' but not Katsuura's).
            cells = solver.priced_cells()
            pool = _pooled_prices(problem, solver)
            np.minimum(pool, cap_sat[cells // prices.shape[1]], out=pool)
            changed = pool != prices.ravel()[cells]
            side_bound = float(pool.sum())
            for a, n in _classes_of(solver, range(n_ant)):
                lid = solver.layout_map[a][0]
                if changed[solver.class_steps(lid)[2]].any():
                    side_bound += n * solver.run_dps(a, [pool], on_cells=True)[0][0]
                else:
                    side_bound += n * p_relaxed[a][0]
    else:
        relaxed = _relaxed(solver, None)
        upper = sum(v for v, _ in relaxed)
    all_relaxed = [t for _, tr in relaxed for t in tr]
    if not coupled and not _violates_limits(problem, all_relaxed):
        obj = plain_value(problem, all_relaxed)
        return SolveResult(all_relaxed, obj, max(upper, obj), "dp", stats)
    order = sorted(range(n_ant), key=lambda a: -relaxed[a][0])
    if p_relaxed:
        # The antennas in turn on prices for those still to plan: much better plans than
        # on plain values (see _sequential_repriced) for the same work, the first antenna
        # being the priced DP's.
        best_tracks = _sequential_repriced(
            problem, solver, order, cap_sat, first=p_relaxed[order[0]][1]
        )
    else:
        best_tracks = _sequential(problem, solver, order, first=relaxed[order[0]][1])
    best_obj = plain_value(problem, best_tracks)

    def open_gap() -> bool:
        ub = min(upper, side_bound)
        return (ub - best_obj) > gap_tol * max(1.0, ub)

    method = "dp+sequential"
    if open_gap() and _milp_size(solver, milp_max_vars) <= milp_max_vars:
        exact = _milp(problem, solver, milp_max_vars, milp_time_s)
        if exact is not None:
            m_tracks, m_obj, m_bound = exact
            if m_obj >= best_obj - 1e-9:
                best_tracks, best_obj = m_tracks, m_obj
            upper = min(upper, m_bound)
            method = "milp"
    # Lagrangian relaxation of the coupling: prices on (satellite, step), one DP per
    # antenna class per iteration, projected subgradient steps (Polyak).
    if priced and method != "milp" and p_relaxed:
        method = "lagrangian"
    if method == "lagrangian" and open_gap() and (deadline is None or not deadline()):
        # The subgradient works on the priceable cells only: the (satellite, step)
        # pairs some window can track, solver.priced_cells() (a few percent of the dense
        # array, and prices elsewhere stay 0: nothing covers those steps); the DPs read
        # them there too. Set up only when there is time to iterate: the dense map
        # costs tens of megabytes.
        shape = prices.shape
        cells = solver.priced_cells()
        cap_c = cap_sat[cells // shape[1]]
        price_c = prices.ravel()[cells]
        slot = solver.cell_slot()
        best_c = price_c.copy()
        # One plan per class of identical antennas (its DP's), with how many antennas
        # share it: the subgradient counts it that many times, and no copies of it on
        # the other antennas' windows are made (about a sixth of an iteration's work
        # with four identical antennas, measured).
        classes = _classes_of(solver, order)
        plans = [(n, p_relaxed[a][0], p_relaxed[a][1]) for a, n in classes]
        theta = _THETA0
        largest_class = max(len(c) for c in _antenna_classes(problem))
        early = _EARLY_ITERATIONS if largest_class > 2 else 0
        misses = 0
        cur_bound = upper
        quick_at = -2
        new_best = False
        # A quick heuristic costs (antennas - 1) DPs, an iteration one per class: keep
        # its share of the work that of two antennas in one class.
        n_classes = len(_antenna_classes(problem))
        quick_every = max(
            _QUICK_HEURISTIC_EVERY, round(_QUICK_HEURISTIC_EVERY * (n_ant - 1) / n_classes)
        )
        # The moving average of the iterates' prices (see _AVERAGE_EVERY).
        avg_c: FloatArray | None = None
        while open_gap() and it < max_iterations:
            if deadline is not None and deadline():
                break
            g = (
                _coverage_cells(
                    problem,
                    [(v, tr) for _, v, tr in plans],
                    slot,
                    shape[1],
                    len(cells),
                    counts=[n for n, _, _ in plans],
                )
                - 1.0
            )
            g[(g < 0) & (price_c <= 0)] = 0.0
            g[(g > 0) & (price_c >= cap_c)] = 0.0
            # Not g @ g: a BLAS dot wakes OpenBLAS's worker threads, which then spin
            # and burned about a quarter more CPU than the solver used (10 iterations,
            # four antennas: 2.59 s CPU in 1.99 s wall; 2.04 s in 2.04 s with one BLAS
            # thread, measured). An elementwise square and sum never calls BLAS.
            norm2 = float(np.square(g).sum())
            if norm2 <= 0:
                break
            # Polyak's step from this iteration's dual value towards the incumbent.
            factor = theta * 0.5 if it <= early else theta
            step = factor * max(cur_bound - best_obj, 1e-9) / norm2
            price_c = np.clip(price_c + step * g, 0.0, cap_c)
            it += 1
            plans = [(n, *solver.run_dps(a, [price_c], on_cells=True)[0]) for a, n in classes]
            bound = sum(n * v for n, v, _ in plans) + float(price_c.sum())
            cur_bound = bound
            if avg_c is None:
                avg_c = price_c.copy()
            else:
                # Both terms are >= 0, so the average is a valid price vector too.
                avg_c *= 1.0 - _AVERAGE_WEIGHT
                avg_c += _AVERAGE_WEIGHT * price_c
            if it % _AVERAGE_EVERY == 0 and (deadline is None or not deadline()):
                # Only a bound: the subgradient and the heuristics go on from the
                # iterates (restarting from the average gave worse plans, measured).
                avg_bound = float(avg_c.sum()) + sum(
                    n * solver.run_dps(a, [avg_c], on_cells=True)[0][0] for a, n in classes
                )
                side_bound = min(side_bound, avg_bound)
                stats["average_dps"] = int(stats.get("average_dps", 0)) + len(classes)
            new_best = bound < upper - 1e-9
            if new_best:
                upper, best_c = bound, price_c.copy()
                misses = 0
            else:
                misses += 1
                if misses >= max(_PATIENCE, it // _PATIENCE_GROWTH):
                    theta *= 0.5
                    misses = 0
            obj_before = best_obj
            if it % _HEURISTIC_EVERY == 0 and open_gap() and quick_at < it - 1:
                # Not right after a quick one: its prices were nearly these (four
                # antennas, 2 s: the two back to back cost about 0.5 s, measured).
                best_tracks, best_obj = _lagrangian_heuristic(
                    problem,
                    solver,
                    order,
                    best_c,
                    best_tracks,
                    best_obj,
                    cap_sat,
                    first=plans[0][2] if new_best else None,
                )
            elif it % quick_every == 0 and open_gap():
                quick_at = it
                # The quick one: this iteration's prices, whose first antenna's plan is
                # already known (one DP fewer than a full sequential pass).
                cand = _sequential_many(
                    problem,
                    solver,
                    order,
                    [price_c],
                    cap=cap_sat,
                    repriced=[True],
                    first=plans[0][2],
                    on_cells=True,
                )[0]
                cobj = plain_value(problem, cand)
                if cobj > best_obj + 1e-9:
                    best_tracks, best_obj = cand, cobj
            if best_obj > obj_before and n_ant > 2:
                # A better plan from the antennas in turn: its first antenna, planned on
                # re-priced values, re-planned on plain ones against the others (one
                # DP). 7 days, four antennas, the 2 s budget's 24 DPs: gap 0.676 %
                # instead of 0.733 % (plan +1,800); 45 DPs 0.644 % instead of 0.680 %;
                # three stations, 60 DPs: 2.122 % instead of 2.150 %. Re-planning two or
                # all four did worse at 24 DPs (0.740 %, 0.749 %), and with two antennas,
                # whose heuristic is one DP, the first one alone did too (0.973 % instead
                # of 0.953 %; measured).
                best_tracks, best_obj, _ = _best_responses(
                    problem, solver, order[:1], best_tracks, best_obj, deadline
                )
        if it % _HEURISTIC_EVERY and open_gap() and (deadline is None or not deadline()):
            best_tracks, best_obj = _lagrangian_heuristic(
                problem, solver, order, best_c, best_tracks, best_obj, cap_sat
            )
    # Then each antenna re-planned against all the others' plans, while it pays.
    if coupled and open_gap() and method != "milp":
        for _round in range(_BEST_RESPONSE_ROUNDS):
            best_tracks, best_obj, improved = _best_responses(
                problem, solver, order, best_tracks, best_obj, deadline
            )
            if not improved or (deadline is not None and deadline()):
                break
    stats["iterations"] = it
    upper = min(upper, side_bound)
    return SolveResult(best_tracks, best_obj, max(upper, best_obj), method, stats)


def _best_responses(
    problem: Problem,
    solver: _Solver,
    antennas: Sequence[int],
    tracks: list[RawTrack],
    obj: float,
    deadline: Callable[[], bool] | None,
) -> tuple[list[RawTrack], float, bool]:
    """Each of ``antennas`` in turn re-planned on plain values against the others'
    tracks (their steps blocked), kept when the plan gains; whether any did."""
    improved = False
    for a in antennas:
        if deadline is not None and deadline():
            break
        others = [t for t in tracks if problem.windows[t.window].antenna != a]
        _, mine = solver.run_dp(a, None, _used_steps(problem, others))
        cand = _repair_limits(problem, others + mine)
        cobj = plain_value(problem, cand)
        if cobj > obj + 1e-9:
            tracks, obj, improved = cand, cobj, True
    return tracks, obj, improved


def _lagrangian_heuristic(
    problem: Problem,
    solver: _Solver,
    order: Sequence[int],
    prices: FloatArray,
    best_tracks: list[RawTrack],
    best_obj: float,
    cap: FloatArray,
    *,
    first: list[RawTrack] | None = None,
) -> tuple[list[RawTrack], float]:
    """Antennas in turn on values lowered by the prices (on ``solver.priced_cells()``)
    re-priced for the antennas still to plan (see :func:`_sequential_many`), each
    avoiding the previous ones' steps; the best of that and the incumbent. ``first``:
    the first antenna's plan at these prices, when known (one DP fewer).

    The antennas in turn on the prices alone, full or a fraction (what this did before),
    found no better plan on the bench once the re-priced chain ran (24 h, four antennas,
    8 s; 7 days, two and four antennas, 15 s; measured), so they are no longer tried.
    """
    cand = _sequential_many(
        problem, solver, order, [prices], cap=cap, repriced=[True], first=first, on_cells=True
    )[0]
    cobj = plain_value(problem, cand)
    if cobj > best_obj + 1e-9:
        best_tracks, best_obj = cand, cobj
    return best_tracks, best_obj


def _initial_prices(problem: Problem, solver: _Solver) -> FloatArray:
    """Starting prices: on each step, what a satellite is worth beyond the marginal one.

    For each class of identical antennas (``n`` of them) the marginal value of a step is
    the ``n``-th largest step value among the satellites it can track then; a satellite
    is priced at its excess over that (the best over classes), as in the LP without
    handovers, where these prices are optimal.

    With handovers a track costs the set-up steps of the handover into it, on which the
    antenna could have tracked another satellite: ``L`` steps at the lightest step value
    (or at the marginal one when that is lower), spread over the longest window of the
    satellite on the step, are taken off the excess. On the 7-day bench this first bound
    is 2.66 % above the plan for four antennas instead of 3.70 % (3.28 % instead of
    4.01 % for two). Taking off half or one and a half times that did worse, and so did
    ``L`` steps at the marginal value (3.70 % for two), or lowering every price by the
    same amount or fraction (measured). Any prices >= 0 give a valid bound (module
    doc), so this only changes how tight the first one is.
    """
    if solver.first_prices is None:
        counts = {solver.layout_map[cls[0]][0]: len(cls) for cls in _antenna_classes(problem)}
        solver.first_prices = _marginal_prices(problem, solver, counts, None)
        # Shared by every caller (a copy is tens of megabytes): read-only.
        solver.first_prices.flags.writeable = False
    return solver.first_prices


def _pooled_prices(problem: Problem, solver: _Solver) -> FloatArray:
    """Prices on ``solver.priced_cells()`` for several antenna classes (stations): on
    each priced cell the higher of :func:`_initial_prices` and, for each group of
    classes that compete for satellites (linked by some (satellite, step) more than one
    of them can track), the same excess over the marginal value of the group's antennas
    pooled (the ``N``-th largest step value among the satellites any of them can track
    then, ``N`` antennas in all).

    Each class's own marginal value ignores that the others share its satellites: two
    neighbouring stations seeing the same three satellites with two antennas each price
    the best one at its excess over the second (each station's marginal), and the
    relaxation then counts the second and third satellites at both stations; pooled,
    the four antennas cover all three and each satellite is priced at its whole value.
    On the 7-day bench (three stations, two antennas each; Weilheim and Cebreros share
    76 % of their cells, Katsuura none) the first bound is 6,144,990 instead of
    6,282,829 (2.2 % lower; all three stations pooled: 6,207,568, each pair of stations
    pooled: 6,179,547, only the cells both of a pair can track pooled: 6,238,742;
    measured). Any prices >= 0 give a valid bound (module doc), but these are only
    evaluated once, for their bound: started from (all three stations) pooled prices,
    the subgradient's heuristic plans were far worse (on them many satellites are worth
    nothing to an antenna; 16 iterations: plan 5,953,020 and gap 2.57 % instead of
    5,994,750 and 1.58 % after 20 from the first prices; the antennas in turn re-priced
    on pooled prices lost 7 % of the plan, measured). Started from these grouped ones,
    with the antennas in turn re-priced relative to them: better bounds but worse plans
    (60 DPs: 1.86 % gap instead of 2.09 %; 150 DPs: 1.515 % instead of 1.513 %, plan
    5,976,390 instead of 5,988,120; measured), so not either. With one class, or
    classes that share no satellite, this is :func:`_initial_prices`.
    """
    counts = {solver.layout_map[cls[0]][0]: len(cls) for cls in _antenna_classes(problem)}
    cells = solver.priced_cells()
    out = np.array(_initial_prices(problem, solver).ravel()[cells])
    if len(counts) < 2:
        return out
    # Groups: connected components of "can track a same (satellite, step)".
    lids = list(counts)
    parent = list(range(len(lids)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    owner = np.full(len(cells), -1, dtype=np.int64)
    for i, lid in enumerate(lids):
        pos = solver.class_steps(lid)[2]
        for j in np.unique(owner[pos]).tolist():
            if j >= 0:
                parent[root(j)] = root(i)
        owner[pos] = i
    groups: dict[int, dict[int, int]] = {}
    for i, lid in enumerate(lids):
        groups.setdefault(root(i), {})[lid] = counts[lid]
    for group in groups.values():
        if len(group) > 1:
            np.maximum(out, _marginal_prices_at(problem, solver, group, None, pooled=True), out=out)
    return out


def _marginal_prices(
    problem: Problem,
    solver: _Solver,
    counts: dict[int, int],
    blocked: BoolArray | None,
) -> FloatArray:
    """:func:`_initial_prices` for ``counts[layout]`` antennas of each class (layout id)
    and only the steps not ``blocked`` (satellites x grid points; tracked already)."""
    prices = np.zeros((len(problem.satellites), problem.grid.n_steps + 1))
    prices.ravel()[solver.priced_cells()] = _marginal_prices_at(problem, solver, counts, blocked)
    return prices


def _marginal_prices_at(
    problem: Problem,
    solver: _Solver,
    counts: dict[int, int],
    blocked: BoolArray | None,
    *,
    pooled: bool = False,
) -> FloatArray:
    """:func:`_marginal_prices` on the priceable cells only (``solver.priced_cells()``;
    the prices are 0 elsewhere); ``pooled``: the excess over all the classes' antennas
    pooled instead (see :func:`_pooled_prices`)."""
    r = problem.grid.resolution_s
    step_val = solver.weights * r
    floor = solver.w_floor * r
    n_k = problem.grid.n_steps + 1
    out = np.zeros(len(solver.priced_cells()))
    levels = np.ascontiguousarray(np.unique(step_val)[::-1])
    jit = _kernels.available() and len(levels) <= 16
    level_of = np.searchsorted(-levels, -step_val).astype(np.int64) if jit else None
    groups = [(solver.class_steps(lid), n) for lid, n in counts.items() if n > 0]
    if pooled:
        # Only the excess over the marginal value of all these antennas pooled.
        active = tuple(sorted(lid for lid, n in counts.items() if n > 0))
        groups = [(solver.pooled_steps(active), sum(n for _, n in groups))]
    for (sk, span, pos), n in groups:
        if n >= len(problem.satellites):
            continue
        if level_of is not None:
            # The same counts and operations per pair, compiled (no dense arrays).
            _kernels.marginal_excess(
                sk,
                span,
                pos,
                _EMPTY_B if blocked is None else blocked.ravel(),
                step_val,
                levels,
                level_of,
                n_k,
                n,
                problem.setup_steps,
                floor,
                out,
            )
            continue
        if blocked is not None:
            free = ~blocked.ravel()[sk]
            sk, span, pos = sk[free], span[free], pos[free]
        sat_i, k_i = np.divmod(sk, n_k)
        theta = _nth_largest_at(step_val, sat_i, k_i, n_k, n)
        handover = problem.setup_steps * np.minimum(theta[k_i], floor) / np.maximum(span, 1.0)
        excess = np.maximum(0.0, step_val[sat_i] - theta[k_i] - handover)
        out[pos] = np.maximum(out[pos], excess)
    return out


def _nth_largest_at(
    step_val: FloatArray, sat_i: IntArray, k_i: IntArray, n_k: int, n: int
) -> FloatArray:
    """:func:`_nth_largest` with the trackable (satellite, grid point) pairs given as
    distinct ``(sat_i, k_i)``: with few distinct weights, counted per level from the
    pairs alone (no dense satellites x grid points array: 3-4 times faster on the 7-day
    bench, measured); the same counts, so the same result."""
    levels = np.unique(step_val)[::-1]
    if len(levels) > 16:
        tr = np.zeros((len(step_val), n_k), dtype=bool)
        tr[sat_i, k_i] = True
        return _nth_largest(step_val, tr, n)
    vals = step_val[sat_i]
    theta = np.zeros(n_k)
    found = np.zeros(n_k, dtype=bool)
    count = np.zeros(n_k, dtype=np.int64)
    for level in levels.tolist():
        count += np.bincount(k_i[vals == level], minlength=n_k)
        hit = ~found & (count >= n)
        theta[hit] = level
        found |= hit
    return theta


def _nth_largest(step_val: FloatArray, tr: npt.NDArray[np.bool_], n: int) -> FloatArray:
    """Per grid point: the ``n``-th largest ``step_val`` of the trackable satellites (0 if
    fewer are trackable)."""
    levels = np.unique(step_val)[::-1]
    if len(levels) > 16:
        vals = np.where(tr, step_val[:, None], 0.0)
        out: FloatArray = -np.partition(-vals, n - 1, axis=0)[n - 1]
        return out
    # Few distinct weights (the usual priorities): count the trackable satellites at
    # or above each level; the n-th largest is the highest level counting n of them.
    # Much cheaper than a partition of the (satellites x grid points) array.
    theta = np.zeros(tr.shape[1])
    found = np.zeros(tr.shape[1], dtype=bool)
    count = np.zeros(tr.shape[1], dtype=np.int64)
    for level in levels.tolist():
        count += tr[step_val == level].sum(axis=0)
        hit = ~found & (count >= n)
        theta[hit] = level
        found |= hit
    return theta


def _trackable(problem: Problem, windows: Iterable[Window] | None = None) -> npt.NDArray[np.bool_]:
    """(satellites x grid points): True where some antenna has a window on the step."""
    n = problem.grid.n_steps + 2
    ws = problem.windows if windows is None else list(windows)
    diff = np.zeros(len(problem.satellites) * n, dtype=np.int64)
    sat = np.fromiter((w.sat for w in ws), dtype=np.int64)
    first = np.fromiter((w.first for w in ws), dtype=np.int64)
    last = first + np.fromiter((len(w.az_rot_deg) - 1 for w in ws), dtype=np.int64)
    np.add.at(diff, sat * n + first, 1)
    np.add.at(diff, sat * n + last, -1)
    return np.cumsum(diff.reshape(-1, n), axis=1)[:, : n - 1] > 0


def _coverage_cells(
    problem: Problem,
    relaxed: Sequence[tuple[float, list[RawTrack]]],
    slot: npt.NDArray[np.signedinteger[Any]],
    n_cols: int,
    n_cells: int,
    *,
    counts: Sequence[int] | None = None,
) -> FloatArray:
    """How many antennas track each priceable cell (``slot`` maps a dense (satellite,
    step) index to its cell; a track's steps are consecutive cells); ``counts[i]``: how
    many antennas follow plan ``i`` (1 each by default)."""
    tracks = [t for _, tr in relaxed for t in tr]
    diff = np.zeros(n_cells + 1)
    if not tracks:
        return diff[:-1]
    sat = np.fromiter((problem.windows[t.window].sat for t in tracks), dtype=np.int64)
    start = np.fromiter((t.start for t in tracks), dtype=np.int64)
    end = np.fromiter((t.end for t in tracks), dtype=np.int64)
    first = slot[sat * n_cols + start]
    if counts is None:
        mult = np.ones(len(tracks))
    else:
        mult = np.repeat(np.asarray(counts, dtype=np.float64), [len(tr) for _, tr in relaxed])
    diff += np.bincount(first, weights=mult, minlength=n_cells + 1)
    diff -= np.bincount(first + (end - start), weights=mult, minlength=n_cells + 1)
    return np.cumsum(diff)[:-1]


def _classes_of(solver: _Solver, order: Sequence[int]) -> list[tuple[int, int]]:
    """(antenna, how many antennas share its DP) per DP the relaxation runs: one per
    layout, on the first antenna of ``order`` with that layout (one per antenna when
    re-planning bonuses make each antenna's values its own)."""
    if solver.p.keep_steps:
        return [(a, 1) for a in order]
    seen: dict[int, int] = {}
    out: list[tuple[int, int]] = []
    for a in order:
        lid = solver.layout_map[a][0]
        if lid in seen:
            i = seen[lid]
            out[i] = (out[i][0], out[i][1] + 1)
        else:
            seen[lid] = len(out)
            out.append((a, 1))
    return out


def _relaxed(
    solver: _Solver, prices: FloatArray | None, *, on_cells: bool = False
) -> list[tuple[float, list[RawTrack]]]:
    """One DP per antenna without the coupling (once per class of identical antennas);
    ``on_cells``: the prices are given on ``solver.priced_cells()`` only."""
    return _relaxed_many(solver, [prices], on_cells=on_cells)[0]


def _relaxed_many(
    solver: _Solver, price_list: Sequence[FloatArray | None], *, on_cells: bool = False
) -> list[list[tuple[float, list[RawTrack]]]]:
    """:func:`_relaxed` for several price vectors, each layout's DPs in one sweep."""
    problem = solver.p
    out: list[list[tuple[float, list[RawTrack]]]] = [[] for _ in price_list]
    cache: dict[int, list[tuple[float, list[RawTrack]]]] = {}
    cache_owner: dict[int, int] = {}
    for a in range(len(problem.antennas)):
        lid, wmap = solver.layout_map[a]
        if lid in cache and not problem.keep_steps:
            # The same DP's plans on this antenna's copies of the windows (the window
            # lists of an antenna class are aligned, each in increasing order).
            base = solver.layout_map[cache_owner[lid]][1]
            for i, (v, tr) in enumerate(cache[lid]):
                local = np.searchsorted(base, [t.window for t in tr]).tolist()
                out[i].append(
                    (
                        v,
                        [
                            RawTrack(int(wmap[q]), t.start, t.end)
                            for q, t in zip(local, tr, strict=True)
                        ],
                    )
                )
            continue
        res = solver.run_dps(a, price_list, on_cells=on_cells)
        cache[lid] = res
        cache_owner[lid] = a
        for i, r in enumerate(res):
            out[i].append(r)
    return out


def _milp_size(solver: _Solver, max_vars: int) -> int:
    """Rough number of MILP variables (the arcs are only built when the rest is small)."""
    lays = [solver.layouts[solver.layout_map[a][0]] for a in range(len(solver.p.antennas))]
    est = sum(7 * int(lay.active.sum()) + lay.nc for lay in lays)
    if est > max_vars:
        return est
    return est + sum(3 * lay.n_arcs for lay in lays)


def _has_limits(problem: Problem) -> bool:
    """True when some satellite has a daily contact maximum (else nothing to check:
    counting a plan's contacts per day cost about 30 ms on the 7-day bench, measured)."""
    return any(s.max_contacts_per_day is not None for s in problem.satellites)


def _violates_limits(problem: Problem, tracks: Sequence[RawTrack]) -> bool:
    if not _has_limits(problem):
        return False
    for (sat, _day), lst in _day_counts(problem, tracks).items():
        cap = problem.satellites[sat].max_contacts_per_day
        if cap is not None and len(lst) > cap:
            return True
    return False


def _sequential(
    problem: Problem,
    solver: _Solver,
    order: Sequence[int],
    *,
    first: list[RawTrack] | None = None,
    prices: FloatArray | None = None,
) -> list[RawTrack]:
    """Antennas one after the other, each avoiding what the previous ones track.

    With ``prices`` the antennas plan on priced values (the Lagrangian heuristic).
    """
    chosen: list[RawTrack] = []
    coupled = problem.settings.one_antenna_per_satellite
    for i, a in enumerate(order):
        if i == 0 and first is not None:
            chosen.extend(first)
            continue
        blocked = _used_steps(problem, chosen) if coupled else None
        _, tracks = solver.run_dp(a, prices, blocked)
        chosen.extend(tracks)
    return _repair_limits(problem, chosen)


def _sequential_repriced(
    problem: Problem,
    solver: _Solver,
    order: Sequence[int],
    cap: FloatArray,
    *,
    first: list[RawTrack] | None = None,
) -> list[RawTrack]:
    """Antennas in turn, each on the marginal-value prices of the antennas still to plan.

    Before each antenna the first prices (:func:`_initial_prices`) are computed again,
    for the antennas of each class not planned yet and the steps not tracked yet, and
    capped at ``cap`` per satellite as the Lagrangian's. A satellite worth more than the
    marginal one is then worth about the marginal value to this antenna (plus the
    handover discount, which favours whole short windows), so the first antennas no
    longer hop between the valuable satellites and leave their passes in pieces for the
    others; the last one of a class plans on the excess over the best satellite left.
    With nothing planned yet the prices are the first prices, so ``first`` may be the
    first antenna's plan at those.

    Measured on the bench (seed constellation, one station): 24 h, four antennas, a
    plan 0.59 % below the best bound found instead of 2.06 % (the plain antennas in
    turn); 7 days, 2.65 % -> 1.25 % below the first bound. Any fraction of those prices
    (0.5, 0.75, 0.9) or more (1.1) did much worse (0.9: 1.90 % on 24 h), so did a
    handover discount 0.5 or 1.5 times the first prices' (24 h, measured).
    """
    cells = solver.priced_cells()
    prices = np.minimum(
        _initial_prices(problem, solver).ravel()[cells], cap[cells // (problem.grid.n_steps + 1)]
    )
    return _sequential_many(
        problem, solver, order, [prices], cap=cap, repriced=[True], first=first, on_cells=True
    )[0]


def _sequential_many(
    problem: Problem,
    solver: _Solver,
    order: Sequence[int],
    price_list: Sequence[FloatArray],
    *,
    cap: FloatArray | None = None,
    repriced: Sequence[bool] | None = None,
    first: list[RawTrack] | None = None,
    on_cells: bool = False,
) -> list[list[RawTrack]]:
    """:func:`_sequential` on several price vectors, side by side: one sweep per antenna
    for all of them (each avoiding what its own previous antennas track).

    A ``repriced`` chain adds to its prices how much the marginal-value prices of the
    antennas still to plan (on the steps still free) differ from the first prices, capped
    to ``0..cap`` (see :func:`_sequential_repriced`, which is this on the first prices;
    on Lagrangian prices it found better plans than those prices alone, measured).
    ``first`` is every chain's first antenna plan when given; ``on_cells``: the price
    vectors are given on ``solver.priced_cells()`` only. The DPs read prices on those
    cells (no dense satellites x grid points arrays).
    """
    n_chains = len(price_list)
    rep = [False] * n_chains if repriced is None else list(repriced)
    coupled = problem.settings.one_antenna_per_satellite
    remaining: dict[int, int] = {}
    class_of: dict[int, int] = {}
    for cls in _antenna_classes(problem):
        lid = solver.layout_map[cls[0]][0]
        remaining[lid] = len(cls)
        for a in cls:
            class_of[a] = lid
    # Every chain works on the priceable cells only (elsewhere no DP reads a price).
    cells = solver.priced_cells()
    p0 = _initial_prices(problem, solver).ravel()[cells] if any(rep) else None
    top = (solver.max_price() if cap is None else cap)[cells // (problem.grid.n_steps + 1)]
    lams = [lam if on_cells else lam.ravel()[cells] for lam in price_list]
    chosen: list[list[RawTrack]] = [[] for _ in price_list]
    for i, a in enumerate(order):
        if i == 0 and first is not None:
            for c in chosen:
                c.extend(first)
            remaining[class_of[a]] -= 1
            continue
        blocked = [_used_steps(problem, c) if coupled and c else None for c in chosen]
        prices: list[FloatArray] = []
        for j, lam in enumerate(lams):
            if rep[j] and p0 is not None:
                pj = _marginal_prices_at(problem, solver, remaining, blocked[j])
                pj -= p0
                pj += lam
                np.clip(pj, 0.0, top, out=pj)
                prices.append(pj)
            else:
                prices.append(lam)
        runs = solver.run_dps(a, prices, blocked, on_cells=True)
        for c, (_, tracks) in zip(chosen, runs, strict=True):
            c.extend(tracks)
        remaining[class_of[a]] -= 1
    return [_repair_limits(problem, c) for c in chosen]


def _repair_limits(problem: Problem, tracks: list[RawTrack]) -> list[RawTrack]:
    """Drop the least valuable contacts beyond a satellite's daily maximum."""
    if not _has_limits(problem):
        return tracks
    over = False
    keep = set(range(len(tracks)))
    index = {id(t): i for i, t in enumerate(tracks)}
    for (sat, _day), lst in _day_counts(problem, tracks).items():
        cap = problem.satellites[sat].max_contacts_per_day
        if cap is None or len(lst) <= cap:
            continue
        over = True
        ranked = sorted(
            lst, key=lambda t: (problem.windows[t.window].fixed, t.end - t.start), reverse=True
        )
        for t in ranked[cap:]:
            keep.discard(index[id(t)])
    if not over:
        return tracks
    return [t for i, t in enumerate(tracks) if i in keep]


def _milp(
    problem: Problem, solver: _Solver, max_vars: int, time_s: float
) -> tuple[list[RawTrack], float, float] | None:
    """Exact solution by MILP (HiGHS) on the DP's own nodes and arcs; small instances only.

    Per antenna one unit of flow runs from a source to a sink through start nodes
    ``S``, track nodes ``R`` (a track of at least ``m`` steps entered by a start arc),
    handover arcs, an idle chain (the far handovers) and follow arcs. The coupling and
    per-day limits are plain linear constraints. Returns None when too large.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp  # type: ignore[import-untyped]
    from scipy.sparse import coo_matrix  # type: ignore[import-untyped]

    cols_val: list[float] = []
    eq_rows: list[int] = []
    eq_cols: list[int] = []
    eq_vals: list[float] = []
    eq_rhs: list[float] = []
    n_var = 0
    # Coupling rows keyed by (sat, step); daily rows by (sat, day).
    cover: dict[tuple[int, int], list[int]] = {}
    daily: dict[tuple[int, int], list[int]] = {}
    fixed_vars: list[int] = []
    # For reading the solution back.
    start_vars: list[tuple[int, int, int, int, int, int]] = []  # var, ant, window, k, m, slot
    run_var_of: dict[tuple[int, int], int] = {}  # (antenna, cell) -> run var
    est = 0
    for a in range(len(problem.antennas)):
        lid, _ = solver.layout_map[a]
        lay = solver.layouts[lid]
        est += 7 * int(lay.active.sum()) + lay.n_arcs + lay.nc
    if est > max_vars:
        return None
    node_base = 0

    def var(value: float) -> int:
        nonlocal n_var
        cols_val.append(value)
        n_var += 1
        return n_var - 1

    def flow(var_id: int, out_node: int | None, in_node: int | None) -> None:
        if out_node is not None:
            eq_rows.append(out_node)
            eq_cols.append(var_id)
            eq_vals.append(-1.0)
        if in_node is not None:
            eq_rows.append(in_node)
            eq_cols.append(var_id)
            eq_vals.append(1.0)

    for a in range(len(problem.antennas)):
        lid, wmap = solver.layout_map[a]
        lay = solver.layouts[lid]
        ns, nc = lay.ns, lay.nc
        size = nc * ns
        val = solver.base_values(a, None)
        fixed_first = [
            int(lay.cell_of_point[lay.point_offset[li]]) for li in np.flatnonzero(lay.fixed)
        ]
        for c in fixed_first:
            val[c] -= solver.bonus
        cum = np.zeros(size)
        cs = np.concatenate(
            (
                np.zeros(ns),
                np.cumsum(np.where(lay.active, val, 0.0).reshape(nc, ns), axis=0).ravel(),
            )
        )
        act = np.flatnonzero(lay.active)
        cum[act] = cs[act] - cs[lay.first_cell[act]]
        # Node numbering for this antenna: S cells, R cells, I columns, src, sink.
        s_node = node_base
        r_node = node_base + size
        i_node = node_base + 2 * size
        src = node_base + 2 * size + nc
        sink = src + 1
        node_base = sink + 1
        eq_rhs.extend([0.0] * (2 * size + nc))
        eq_rhs.extend([-1.0, 1.0])
        can_start = lay.can_start
        can_end = np.zeros(size, dtype=bool)
        can_end[act] = lay.pmidx[act] != lay.neg_cell
        fixed_cell = np.zeros(size, dtype=bool)
        if lay.fixed.any():
            fc = act[lay.fixed[lay.win[act]]]
            fixed_cell[fc] = True
            wl = lay.win[fc]
            kk = fc // ns
            can_end[fc] = kk == lay.firsts[wl] + lay.lengths[wl] - 1
        for c in act.tolist():
            w = int(lay.win[c])
            k = c // ns
            m = int(lay.mins[w])
            last = int(lay.firsts[w] + lay.lengths[w] - 1)
            sat = int(lay.sat[c])
            if can_start[c]:
                v = var(float(cum[c + m * ns] - cum[c]))
                flow(v, s_node + c, r_node + c + m * ns)
                start_vars.append((v, a, int(wmap[w]), k, m, c % ns))
                for kk in range(k, k + m):
                    cover.setdefault((sat, kk), []).append(v)
                daily.setdefault((sat, problem.day_of(k)), []).append(v)
                if fixed_cell[c]:
                    fixed_vars.append(v)
                if k + 1 <= last and can_start[c + ns]:
                    fo = var(0.0)
                    flow(fo, s_node + c, s_node + c + ns)
            if can_end[c] or (k >= lay.firsts[w] + m and k <= last):
                if k < last and not fixed_cell[c]:
                    ru = var(float(val[c]))
                    flow(ru, r_node + c, r_node + c + ns)
                    cover.setdefault((sat, k), []).append(ru)
                    run_var_of[(a, c)] = ru
                if can_end[c]:
                    idle = var(0.0)
                    flow(idle, r_node + c, i_node + k)
                    sk = var(0.0)
                    flow(sk, r_node + c, sink)
        for k in range(nc - 1):
            v = var(0.0)
            flow(v, i_node + k, i_node + k + 1)
        # Pruned arcs assume a track may always go on; with the coupling rows it may
        # not, so the MILP gets every earliest arrival.
        full_arcs = lay.extra_arcs(np.flatnonzero(lay.can_end)) if lay.prune else lay.arcs
        g = lay.far
        for c in np.flatnonzero(can_start).tolist():
            k = c // ns
            if k - g >= 0:
                v = var(0.0)
                flow(v, i_node + k - g, s_node + c)
        for s_c, d_c in zip(full_arcs.src.tolist(), full_arcs.dst.tolist(), strict=True):
            v = var(0.0)
            if s_c == lay.zero_cell:
                flow(v, src, s_node + d_c)
            else:
                flow(v, r_node + s_c, s_node + d_c)
        # Idle from the start: any window from G0 on (directly below G, by the idle
        # chain from G on).
        v = var(0.0)
        flow(v, src, i_node + 0)
        for c in np.flatnonzero(can_start).tolist():
            if lay.g0 <= c // ns < g:
                v = var(0.0)
                flow(v, src, s_node + c)
        v = var(0.0)
        flow(v, src, sink)
    if n_var > max_vars:
        return None
    ub_rows: list[list[int]] = []
    ub_rhs: list[float] = []
    if problem.settings.one_antenna_per_satellite:
        for vs in cover.values():
            if len(vs) > 1:
                ub_rows.append(vs)
                ub_rhs.append(1.0)
    for (sat, _day), vs in daily.items():
        cap = problem.satellites[sat].max_contacts_per_day
        if cap is not None and len(vs) > cap:
            ub_rows.append(vs)
            ub_rhs.append(float(cap))
    constraints = [
        LinearConstraint(
            coo_matrix((eq_vals, (eq_rows, eq_cols)), shape=(node_base, n_var)).tocsr(),
            eq_rhs,
            eq_rhs,
        )
    ]
    if ub_rows:
        rr = [i for i, row in enumerate(ub_rows) for _ in row]
        cc = [v for row in ub_rows for v in row]
        constraints.append(
            LinearConstraint(
                coo_matrix((np.ones(len(cc)), (rr, cc)), shape=(len(ub_rows), n_var)).tocsr(),
                -np.inf,
                ub_rhs,
            )
        )
    lb = np.zeros(n_var)
    lb[fixed_vars] = 1.0
    res = milp(
        -np.array(cols_val),
        integrality=np.ones(n_var),
        bounds=Bounds(lb, np.ones(n_var)),
        constraints=constraints,
        options={"time_limit": time_s, "mip_rel_gap": 1e-9, "disp": False},
    )
    if res.x is None:
        return None
    x = np.round(res.x).astype(np.int64)
    tracks: list[RawTrack] = []
    for v, a, wi, k, m, s in start_vars:
        if x[v] != 1:
            continue
        ns = solver.layouts[solver.layout_map[a][0]].ns
        j = k + m
        while True:
            nxt = run_var_of.get((a, j * ns + s))
            if nxt is None or x[nxt] != 1:
                break
            j += 1
        tracks.append(RawTrack(wi, k, j))
    obj = plain_value(problem, tracks)
    dual = getattr(res, "mip_dual_bound", None)
    bound = -float(dual) if dual is not None and math.isfinite(float(dual)) else math.inf
    if res.status == 0:
        # Solved to optimality (within mip_rel_gap): the plan is its own bound.
        bound = min(bound, obj * (1.0 + 1e-9) + 1e-9)
    return tracks, obj, max(bound, obj)


def _blocked_cells(
    lay: _Layout, blocked_steps: npt.NDArray[np.bool_] | None
) -> npt.NDArray[np.bool_] | None:
    """The layout's cells of the blocked (satellite, step) pairs; None when none is blocked."""
    if blocked_steps is None:
        return None
    blocked = np.zeros(lay.nc * lay.ns, dtype=bool)
    blocked[lay.act_idx] = blocked_steps.ravel()[lay.act_sk]
    return blocked if blocked.any() else None
