"""Compiled kernels of the per-antenna DP (numba), optional.

The sweep of :mod:`controller.scheduler.optimal` goes through time in blocks of a few
grid steps, so its vectorised numpy form spends most of its time in Python overhead
(about 10,000 blocks over 7 days on a 30 s grid). :func:`sweep` is the same recurrence
cell by cell, compiled: it writes exactly the arrays the numpy sweep writes (maxima are
exact and every sum is the same single addition), so plans and values are identical.
:func:`values`, :func:`backtrack` and :func:`marginal_excess` do the same for the
sweep's input values, the plan's recovery and the marginal-value prices;
:func:`near_bits` makes the sweep's reach checks once per layout, as bit masks (the
numpy sweep's precomputed reach stack, packed). The tests compare each with its numpy
counterpart on random instances.

numba is optional: without it, or with ``GROUNDLINK_NO_JIT=1`` in the environment,
:func:`available` is False and the numpy code runs. numba is imported on first use
only; its import and loading the cached kernels cost a process about 1 s of CPU once
(:func:`warm_up` pays it up front), and compiling them the first time on a machine
about 7 s (``cache=True``: numba's cache, next to this file or in the user's cache).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

__all__ = [
    "available",
    "backtrack",
    "marginal_excess",
    "near_bits",
    "sweep",
    "values",
    "warm_up",
]

FloatArray = npt.NDArray[np.float64]

_log = structlog.get_logger("controller.scheduler")
_state: dict[str, Any] = {}
# How many of each row's best ends the compiled sweep keeps in order (see _sweep_py).
_TOP = 4


def available() -> bool:
    """True when the compiled kernels may run: numba importable, not disabled, and every
    kernel loaded (or compiled) once. A kernel that fails to compile (a numba or LLVM
    problem on this machine) leaves the numpy code running, with a warning: a plan must
    never be lost to the compiler."""
    if os.environ.get("GROUNDLINK_NO_JIT", "") not in ("", "0"):
        return False
    if "ok" not in _state:
        try:
            import numba  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
        except ImportError:
            _state["ok"] = False
        else:
            try:
                _load()
            except Exception as exc:  # any compiler failure: the numpy path still works
                _log.warning("compiled scheduler kernels unavailable; using numpy", error=str(exc))
                _state["ok"] = False
            else:
                _state["ok"] = True
    return bool(_state["ok"])


def warm_up() -> bool:
    """Import numba and load (or, the first time on a machine, compile) every kernel, so
    that a process can pay that once, up front (about 1 s of CPU when cached: numba's
    import and its code loading); False when the kernels are not available."""
    return available()


def _load() -> None:
    """Run every kernel once on a one-cell instance (loads or compiles it)."""
    f8 = np.zeros(1)
    i8 = np.zeros(1, dtype=np.int64)
    b1 = np.zeros(1, dtype=bool)
    f4 = np.zeros(1, dtype=np.float32)
    reach = np.zeros((0, 2), dtype=np.float32)
    check = np.zeros((0, 2), dtype=bool)
    pmidx = np.ones(1, dtype=np.int64)  # the NEG sentinel of a one-cell layout
    inputs = (np.zeros(0, dtype=np.int64), b1, b1, pmidx, b1, f8, f4, f4, reach, check)
    sv, pm, ef = (np.full((1, 3), -np.inf) for _ in range(3))
    bits = np.zeros((1, 0), dtype=np.int64)
    near_bits(1, 1, inputs, bits)
    sweep(
        np.zeros((1, 1)), False, -1.0, 1, 1, 1, inputs, sv, pm, ef, np.zeros((1, 2)), f8[None], bits
    )
    values(f8, f8, b1, i8 - 1, i8 - 1, i8, 1, 1, 1.0, np.zeros(1))
    marginal_excess(i8, f8, i8, b1[:0], f8, f8, i8, 1, 1, 1, 0.0, np.zeros(1))
    row = np.full(3, -np.inf)
    backtrack(
        0, 1, 1, 1, 0, 2, i8, i8 + 1, i8, pmidx, b1, b1, f4, f4, reach, check, row, row, row,
        f8, np.zeros(2), f8,
    )  # fmt: skip


def _compiled() -> Callable[..., None]:
    """The numba-compiled sweep (compiled, or loaded from the cache, on first use)."""
    fn = _state.get("sweep")
    if fn is None:
        import numba  # type: ignore[import-not-found,unused-ignore]

        fn = _state["sweep"] = numba.njit(cache=True, nogil=True)(_sweep_py)
    return fn


def sweep(
    dsubs: FloatArray,
    runs: bool,
    half: float,
    nc: int,
    ns: int,
    far: int,
    inputs: tuple[Any, ...],
    sv: FloatArray,
    pm: FloatArray,
    ef: FloatArray,
    be: FloatArray,
    colmax: FloatArray,
    bits: npt.NDArray[np.int64],
) -> None:
    """Fill ``sv, pm, ef, be, colmax`` (initialised as the numpy sweep does) for every
    row of ``dsubs``; with ``runs``, ends below ``half`` (their start lay in an earlier
    run of the window) are discarded. ``inputs`` is the layout's
    :meth:`~controller.scheduler.optimal._Layout.kernel_inputs` (lags, can_start,
    active, pmidx, park arrivals, idle floor, az, el, reach, axes to check); ``bits``
    its :func:`near_bits` (cells x lags), or an empty array (no rows): the sweep then
    checks the rotator's reach itself. See
    :func:`controller.scheduler.optimal._sweep_many`."""
    _compiled()(dsubs, runs, half, nc, ns, far, *inputs, bits, sv, pm, ef, be, colmax)


def _sweep_py(  # pragma: no cover - runs compiled (the numpy sweep is its reference)
    dsubs: FloatArray,
    runs: bool,
    half: float,
    nc: int,
    ns: int,
    far: int,
    lags: npt.NDArray[np.int64],
    can_start: npt.NDArray[np.bool_],
    active: npt.NDArray[np.bool_],
    pmidx: npt.NDArray[np.int64],
    is_init: npt.NDArray[np.bool_],
    floor: FloatArray,
    az32: npt.NDArray[np.float32],
    el32: npt.NDArray[np.float32],
    reach32: npt.NDArray[np.float32],
    check: npt.NDArray[np.bool_],
    bits: npt.NDArray[np.int64],
    sv: FloatArray,
    pm: FloatArray,
    ef: FloatArray,
    be: FloatArray,
    colmax: FloatArray,
) -> None:
    """Row by row: the ends of row k (they need starts up to k - m, m >= 1), then its
    starts (they need ends up to k - L, L >= 1, and the best end up to k - G).

    With ``bits`` (one row per cell), a start reads which slots of each lag's source
    row the rotator reaches off its bit mask instead of comparing angles: the same
    float32 comparisons, made once per layout by :func:`near_bits` (7 days, four
    antennas: a sweep about 30 -> 22 ms, the table about 21 ms once; measured)."""
    neg = -np.inf
    nl = len(lags)
    nb = dsubs.shape[0]
    g = far
    # Per row, the slots of its _TOP best ends, best first: a start tries those in turn
    # and scans the row only when the rotator reaches none of them.
    top = np.zeros((nc, _TOP), dtype=np.int64)
    n_top = np.zeros(nc, dtype=np.int64)
    # Per row, the slots with a finite end (bit s), for the bit masks.
    fin = np.zeros(nc, dtype=np.int64)
    use_bits = bits.shape[0] > 0
    for b in range(nb):
        d_b = dsubs[b]
        sv_b = sv[b]
        pm_b = pm[b]
        ef_b = ef[b]
        be_b = be[b]
        cm_b = colmax[b]
        for k in range(nc):
            base = k * ns
            # Ends of row k.
            cm = neg
            n_top[k] = 0
            fk = 0
            for s in range(ns):
                c = base + s
                e = pm_b[pmidx[c]] + d_b[c]
                if runs and e < half:
                    e = neg
                ef_b[c] = e
                if e > cm:
                    cm = e
                if e > neg:
                    fk |= 1 << s
                    # Insert into the row's top list (ties keep the lower slot first).
                    n = n_top[k]
                    if n < _TOP or e > ef_b[base + top[k, n - 1]]:
                        i = n if n < _TOP else _TOP - 1
                        while i > 0 and ef_b[base + top[k, i - 1]] < e:
                            top[k, i] = top[k, i - 1]
                            i -= 1
                        top[k, i] = s
                        if n < _TOP:
                            n_top[k] = n + 1
            cm_b[k] = cm
            fin[k] = fk
            v = cm if cm > floor[k] else floor[k]
            if g + k - 1 >= 0 and be_b[g + k - 1] > v:
                v = be_b[g + k - 1]
            be_b[g + k] = v
            # Starts of row k: park, near handovers, far handovers (best end <= k - G).
            far_v = be_b[k]
            for s2 in range(ns):
                c = base + s2
                act = active[c]
                best = 0.0 if is_init[c] else neg
                if far_v > best:
                    best = far_v
                if nl > 0 and can_start[c]:
                    a2 = az32[c]
                    e2 = el32[c]
                    for li in range(nl):
                        j = k - lags[li]
                        # No end in row j beats the best so far: skip its reach checks.
                        if j < 0 or cm_b[j] <= best:
                            continue
                        src0 = j * ns
                        if use_bits:
                            # The reached slots with a finite end; the best of them is
                            # the first of the row's best ends among them, else (the list
                            # full and its last entry above best) found by their bits.
                            m = bits[c, li] & fin[j]
                            if m == 0:
                                continue
                            hit = False
                            for q in range(n_top[j]):
                                s1 = top[j, q]
                                x = ef_b[src0 + s1]
                                if x <= best:
                                    hit = True
                                    break
                                if (m >> s1) & 1:
                                    best = x
                                    hit = True
                                    break
                            if hit or n_top[j] < _TOP:
                                continue
                            s1 = 0
                            while m != 0:
                                if m & 1:
                                    x = ef_b[src0 + s1]
                                    if x > best:
                                        best = x
                                m >>= 1
                                s1 += 1
                            continue
                        ra = reach32[li, 0]
                        re = reach32[li, 1]
                        ca = check[li, 0]
                        ce = check[li, 1]
                        hit = False
                        for q in range(n_top[j]):
                            c1 = src0 + top[j, q]
                            x = ef_b[c1]
                            if x <= best:
                                hit = True  # nothing further down the list beats best
                                break
                            if (ca and abs(a2 - az32[c1]) > ra) or (ce and abs(e2 - el32[c1]) > re):
                                continue
                            best = x
                            hit = True
                            break
                        if hit or n_top[j] < _TOP:
                            # Decided by the list (or the list holds every finite end).
                            continue
                        for s1 in range(ns):
                            c1 = src0 + s1
                            x = ef_b[c1]
                            if x <= best:
                                continue
                            if ca and abs(a2 - az32[c1]) > ra:
                                continue
                            if ce and abs(e2 - el32[c1]) > re:
                                continue
                            best = x
                if runs:
                    # Waiting on the satellite across a blocked stretch (same window:
                    # windows sharing a slot are more than a block apart).
                    if k > 0 and active[c - ns] and sv_b[c - ns] > best:
                        best = sv_b[c - ns]
                    if not act:
                        best = neg
                sv_b[c] = best
                if act:
                    p = best - d_b[c]
                    if k > 0 and active[c - ns] and pm_b[c - ns] > p:
                        p = pm_b[c - ns]
                    pm_b[c] = p
                else:
                    pm_b[c] = neg


# Largest slot count the bit masks of :func:`near_bits` hold (one int64 per cell and lag).
BITS_MAX_SLOTS = 63


def near_bits(nc: int, ns: int, inputs: tuple[Any, ...], out: npt.NDArray[np.int64]) -> None:
    """Fill ``out`` (cells x lags, ``ns <= BITS_MAX_SLOTS``): bit ``s1`` of ``out[c, li]``
    is set when the cell ``c = k * ns + s2`` may start a track and the rotator reaches it
    from slot ``s1`` of row ``k - lags[li]`` in that lag (the sweep's own float32
    comparisons of :func:`sweep`; :meth:`~controller.scheduler.optimal._Layout.near_stack`
    in the numpy sweep). ``inputs`` as for :func:`sweep`."""
    fn = _state.get("near_bits")
    if fn is None:
        import numba  # type: ignore[import-not-found,unused-ignore]

        fn = _state["near_bits"] = numba.njit(cache=True, nogil=True)(_near_bits_py)
    lags, can_start, _, _, _, _, az32, el32, reach32, check = inputs
    fn(nc, ns, lags, can_start, az32, el32, reach32, check, out)


def _near_bits_py(  # pragma: no cover - runs compiled (the numpy stack is its reference)
    nc: int,
    ns: int,
    lags: npt.NDArray[np.int64],
    can_start: npt.NDArray[np.bool_],
    az32: npt.NDArray[np.float32],
    el32: npt.NDArray[np.float32],
    reach32: npt.NDArray[np.float32],
    check: npt.NDArray[np.bool_],
    out: npt.NDArray[np.int64],
) -> None:
    """Every (cell, lag, source slot) once: the reach test of the sweep's scan."""
    nl = len(lags)
    for k in range(nc):
        for s2 in range(ns):
            c = k * ns + s2
            for li in range(nl):
                j = k - lags[li]
                m = 0
                if j >= 0 and can_start[c]:
                    a2 = az32[c]
                    e2 = el32[c]
                    ra = reach32[li, 0]
                    re = reach32[li, 1]
                    ca = check[li, 0]
                    ce = check[li, 1]
                    src0 = j * ns
                    for s1 in range(ns):
                        c1 = src0 + s1
                        if ca and abs(a2 - az32[c1]) > ra:
                            continue
                        if ce and abs(e2 - el32[c1]) > re:
                            continue
                        m |= 1 << s1
                out[c, li] = m


def backtrack(
    start: int,
    ns: int,
    lag: int,
    far: int,
    g0: int,
    zero_cell: int,
    win: npt.NDArray[np.int64],
    mins: npt.NDArray[np.int64],
    firsts: npt.NDArray[np.int64],
    pmidx: npt.NDArray[np.int64],
    can_start: npt.NDArray[np.bool_],
    is_init: npt.NDArray[np.bool_],
    az32: npt.NDArray[np.float32],
    el32: npt.NDArray[np.float32],
    reach32: npt.NDArray[np.float32],
    check: npt.NDArray[np.bool_],
    sv: FloatArray,
    pm: FloatArray,
    ef: FloatArray,
    dsub: FloatArray,
    be: FloatArray,
    colmax: FloatArray,
) -> npt.NDArray[np.int64]:
    """Tracks of the best path from its last end ``start``, latest first, as rows
    ``(local window, start point, end point)``; see
    :func:`controller.scheduler.optimal._backtrack` (the same choices, in the same
    order). A row ``(-1, i, 0)`` reports a lost start (``i = 0``) or handover (1)."""
    fn = _state.get("backtrack")
    if fn is None:
        import numba  # type: ignore[import-not-found,unused-ignore]

        fn = _state["backtrack"] = numba.njit(cache=True, nogil=True)(_backtrack_py)
    out: npt.NDArray[np.int64] = fn(
        start,
        ns,
        lag,
        far,
        g0,
        zero_cell,
        win,
        mins,
        firsts,
        pmidx,
        can_start,
        is_init,
        az32,
        el32,
        reach32,
        check,
        sv,
        pm,
        ef,
        dsub,
        be,
        colmax,
    )
    return out


def _backtrack_py(  # pragma: no cover - runs compiled (the numpy backtrack is its reference)
    start: int,
    ns: int,
    lag: int,
    far: int,
    g0: int,
    zero_cell: int,
    win: npt.NDArray[np.int64],
    mins: npt.NDArray[np.int64],
    firsts: npt.NDArray[np.int64],
    pmidx: npt.NDArray[np.int64],
    can_start: npt.NDArray[np.bool_],
    is_init: npt.NDArray[np.bool_],
    az32: npt.NDArray[np.float32],
    el32: npt.NDArray[np.float32],
    reach32: npt.NDArray[np.float32],
    check: npt.NDArray[np.bool_],
    sv: FloatArray,
    pm: FloatArray,
    ef: FloatArray,
    dsub: FloatArray,
    be: FloatArray,
    colmax: FloatArray,
) -> npt.NDArray[np.int64]:
    """The numpy backtrack's search, loop by loop."""
    nc = len(colmax)
    g = far
    n_lags = g - lag
    out = np.empty((nc + 1, 3), dtype=np.int64)
    n = 0
    cur = start
    for _ in range(nc * 2 + 10):
        w = win[cur]
        j = cur // ns
        s = cur - j * ns
        m = mins[w]
        first = firsts[w]
        target = pm[pmidx[cur]]
        i_star = -1
        for k in range(first, j - m + 1):
            c = k * ns + s
            if sv[c] - dsub[c] == target:
                i_star = k
                break
        if i_star < 0:
            out[n, 0] = -1
            out[n, 1] = 0
            return out[: n + 1]
        out[n, 0] = w
        out[n, 1] = i_star
        out[n, 2] = j
        n += 1
        v = sv[i_star * ns + s]
        i2 = i_star
        for k in range(first, i_star + 1):
            if sv[k * ns + s] == v:
                i2 = k
                break
        dcell = i2 * ns + s
        src = -1
        if is_init[dcell] and v == 0.0:
            src = zero_cell
        hi = i2 - lag
        if src < 0 and can_start[dcell] and n_lags > 0 and hi >= 0:
            lo = max(0, i2 - g + 1)
            a2 = az32[dcell]
            e2 = el32[dcell]
            # Increasing lag (rows hi down to lo), then slot, as the numpy search.
            for r in range(hi, lo - 1, -1):
                li = i2 - r - lag  # index into the increasing lags
                found = False
                for s1 in range(ns):
                    c1 = r * ns + s1
                    if ef[c1] != v:
                        continue
                    if check[li, 0] and abs(a2 - az32[c1]) > reach32[li, 0]:
                        continue
                    if check[li, 1] and abs(e2 - el32[c1]) > reach32[li, 1]:
                        continue
                    src = c1
                    found = True
                    break
                if found:
                    break
        if src < 0 and be[i2] == v:
            col = -1
            for c in range(max(0, i2 - g + 1)):
                if colmax[c] == v:
                    col = c
                    break
            if col >= 0:
                for s1 in range(ns):
                    if ef[col * ns + s1] == v:
                        src = col * ns + s1
                        break
            elif v == 0.0 and i2 >= g0:
                src = zero_cell
        if src < 0:
            out[n, 0] = -1
            out[n, 1] = 1
            return out[: n + 1]
        if src == zero_cell:
            break
        cur = src
    return out[:n]


def values(
    val: FloatArray,
    prices: FloatArray,
    blocked: npt.NDArray[np.bool_],
    price_sk: npt.NDArray[np.int64],
    act_sk: npt.NDArray[np.int64],
    first_cell: npt.NDArray[np.int64],
    nc: int,
    ns: int,
    run_offset: float,
    out: FloatArray,
) -> bool:
    """``out`` = the sweep's per-cell values (``dsub``), as
    :meth:`controller.scheduler.optimal._Layout.values` computes them from ``val`` less
    the flat ``prices`` at ``price_sk`` (cells opening a step; -1 elsewhere), with the
    flat ``blocked`` steps at ``act_sk`` (active cells; -1 elsewhere) cutting runs.
    Empty ``prices`` or ``blocked`` mean none. Returns whether any step is blocked."""
    fn = _state.get("values")
    if fn is None:
        import numba  # type: ignore[import-not-found,unused-ignore]

        fn = _state["values"] = numba.njit(cache=True, nogil=True)(_values_py)
    return bool(fn(val, prices, blocked, price_sk, act_sk, first_cell, nc, ns, run_offset, out))


def _values_py(  # pragma: no cover - runs compiled (the numpy values are its reference)
    val: FloatArray,
    prices: FloatArray,
    blocked: npt.NDArray[np.bool_],
    price_sk: npt.NDArray[np.int64],
    act_sk: npt.NDArray[np.int64],
    first_cell: npt.NDArray[np.int64],
    nc: int,
    ns: int,
    run_offset: float,
    out: FloatArray,
) -> bool:
    """Running sums down each slot's column (the numpy cumsum's additions, in its
    order), less the sum at the window's first cell."""
    has_p = len(prices) > 0
    has_b = len(blocked) > 0
    runs = False
    # Row by row (memory order), each slot's running sums side by side.
    run_v = np.zeros(ns)
    run_b = np.zeros(ns, dtype=np.int64)
    first_v = np.zeros(ns)
    first_b = np.zeros(ns, dtype=np.int64)
    for k in range(nc):
        for s in range(ns):
            c = k * ns + s
            sk = act_sk[c]
            if sk < 0:
                out[c] = 0.0
                continue
            if first_cell[c] == c:
                first_v[s] = run_v[s]
                first_b[s] = run_b[s]
            cum = run_v[s] - first_v[s]
            if has_b:
                nb = run_b[s] - first_b[s]
                if nb:
                    cum -= run_offset * nb
                if blocked[sk]:
                    run_b[s] += 1
                    runs = True
            out[c] = cum
            v = val[c]
            if has_p and price_sk[c] >= 0:
                v = v - prices[price_sk[c]]
            run_v[s] += v
    return runs


def marginal_excess(
    sk: npt.NDArray[np.int64],
    span: FloatArray,
    pos: npt.NDArray[np.int64],
    blocked: npt.NDArray[np.bool_],
    step_val: FloatArray,
    levels: FloatArray,
    level_of: npt.NDArray[np.int64],
    n_k: int,
    n: int,
    setup_steps: int,
    floor: float,
    out: FloatArray,
) -> None:
    """``out[pos] = max(out[pos], excess)`` over the free pairs ``sk`` (not ``blocked``;
    empty: none is): a satellite's step value beyond the ``n``-th largest among the
    satellites trackable then, less the handover discount; see
    :func:`controller.scheduler.optimal._marginal_prices_at` (the same operations per
    pair). ``levels`` are the distinct step values, decreasing, and ``level_of`` each
    satellite's index in them."""
    fn = _state.get("marginal")
    if fn is None:
        import numba  # type: ignore[import-not-found,unused-ignore]

        fn = _state["marginal"] = numba.njit(cache=True, nogil=True)(_marginal_py)
    fn(sk, span, pos, blocked, step_val, levels, level_of, n_k, n, setup_steps, floor, out)


def _marginal_py(  # pragma: no cover - runs compiled (the numpy prices are its reference)
    sk: npt.NDArray[np.int64],
    span: FloatArray,
    pos: npt.NDArray[np.int64],
    blocked: npt.NDArray[np.bool_],
    step_val: FloatArray,
    levels: FloatArray,
    level_of: npt.NDArray[np.int64],
    n_k: int,
    n: int,
    setup_steps: int,
    floor: float,
    out: FloatArray,
) -> None:
    """Count the free pairs per (level, grid point), read the n-th largest level per
    grid point off the running counts, then price every free pair."""
    has_b = len(blocked) > 0
    n_lev = len(levels)
    count = np.zeros((n_k, n_lev), dtype=np.int64)
    for i in range(len(sk)):
        q = sk[i]
        if has_b and blocked[q]:
            continue
        count[q % n_k, level_of[q // n_k]] += 1
    theta = np.zeros(n_k)
    for k in range(n_k):
        c = 0
        for li in range(n_lev):
            c += count[k, li]
            if c >= n:
                theta[k] = levels[li]
                break
    for i in range(len(sk)):
        q = sk[i]
        if has_b and blocked[q]:
            continue
        sat = q // n_k
        t = theta[q - sat * n_k]
        sp = span[i] if span[i] > 1.0 else 1.0
        handover = setup_steps * (t if t < floor else floor) / sp
        x = step_val[sat] - t - handover
        if x < 0.0:
            x = 0.0
        if x > out[pos[i]]:
            out[pos[i]] = x
