"""A rank's share of the sweep run by this process and helper processes on
the same GPU, pulling contiguous chunks from one shared counter.

Chunks are taken in spread_order, so processes working at the same time are
far apart in M (different kernels, not one kernel waited for by all). The
calling process takes chunks too and never waits for a helper to start: when
every chunk is taken it waits only for chunks in progress in live helpers,
so a warm cache (nothing to compile) costs no helper start-up. A helper that
fails or dies is logged and left behind: its chunk is not counted as run
here, so the caller's finishing sweep runs (and compiles) it; helpers only
ever speed a warm-up up. Helpers are spawned (`multiprocessing` spawn:
CUDA-safe), each with its own CUDA context on `device`; idle ones exit by
themselves.
"""

import logging
import multiprocessing
import queue as queue_module
import time
import traceback

from tpjit.deep_gemm import plan

logger = logging.getLogger("tpjit.deep_gemm")

# A DeepGEMM call slower than this (a compile, or a wait for one) is listed
# in the warm-up's result (where the time went).
SLOW_CALL_S = 0.25


class _Runner:
    """Runs (shape_index, [m, ...]) work, keeping one executor (the current
    shape's) at a time."""

    def __init__(self, shapes, max_ms):
        import torch
        import deep_gemm
        from tpjit.deep_gemm import sweep
        self.torch, self.dg, self.sweep = torch, deep_gemm, sweep
        self.shapes, self.max_ms = shapes, max_ms
        self.index, self.executor, self.calls = None, None, 0
        self.slow_calls = []  # [shape_index, m, seconds, at] (> SLOW_CALL_S)
        self._t0 = time.monotonic()

    def run(self, work):
        for index, ms in work:
            if index != self.index:
                self.executor = None
                self.executor = self.sweep.Executor(
                    self.shapes[index], self.max_ms[index], self.torch,
                    self.dg)
                self.index = index
            for m in ms:
                t = time.monotonic()
                self.executor.run(m)
                took = time.monotonic() - t
                if took > SLOW_CALL_S and len(self.slow_calls) < 500:
                    self.slow_calls.append([index, m, round(took, 3),
                                            round(t - self._t0, 3)])
                self.calls += 1
        self.torch.cuda.current_stream().synchronize()

    def close(self):
        self.executor = None


def _take(state, n, me):
    """The next chunk index, marked as in progress in process `me`'s slot;
    None when all are taken. One lock for the counter and the slots, so
    "all taken, none in progress" is never seen while one is being taken."""
    with state["lock"]:
        i = state["next"].value
        if i >= n:
            return None
        state["next"].value = i + 1
        state["slot"][me] = i
        return i


def _done(state, me, calls):
    with state["lock"]:
        state["slot"][me] = -1
        state["calls"].value += calls


def _drain(runner, chunks, order, state, me):
    """Runs chunks until none is left; returns the indexes run here."""
    ran = []
    while True:
        i = _take(state, len(order), me)
        if i is None:
            return ran
        before = runner.calls
        runner.run(chunks[order[i]])
        _done(state, me, runner.calls - before)
        ran.append(order[i])


def _helper_main(me, device, shapes, chunks, order, max_ms, state, reports):
    """Entry of helper process `me`: take chunks until none is left."""
    start = time.monotonic()
    try:
        import torch
        torch.cuda.set_device(device)
        runner = _Runner([plan.Shape(*s) for s in shapes], max_ms)
        ready = time.monotonic() - start
        ran = _drain(runner, chunks, order, state, me)
        runner.close()
        reports.put({"ok": True, "me": me, "chunks": len(ran),
                     "calls": runner.calls, "startup_s": ready})
    except BaseException:  # reported to the parent, which goes on
        reports.put({"ok": False, "me": me, "error": traceback.format_exc()})


class _Value:
    def __init__(self):
        self.value = 0


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def run(shapes, work_units, max_ms, device, helpers, chunks_per_process=4):
    """Runs work_units (plan.Units of this rank, in sweep order) here and on
    `helpers` helper processes. Returns (units run in this process, stats)."""
    n = max(1, (helpers + 1) * chunks_per_process)
    unit_chunks = plan.chunk(work_units, n)
    chunks = [plan.work_of(c) for c in unit_chunks]
    order = plan.spread_order(len(chunks))
    runner = _Runner(shapes, max_ms)
    helpers = min(helpers, len(chunks) - 1)
    if helpers <= 0:
        state = {"lock": _NoLock(), "next": _Value(), "calls": _Value(),
                 "slot": [-1]}
        ran = _drain(runner, chunks, order, state, 0)
        runner.close()
        return ([u for i in ran for u in unit_chunks[i]],
                {"calls": state["calls"].value, "helper_chunks": [],
                 "helper_startup_s": [], "helper_failures": [],
                 "slow_calls": runner.slow_calls})
    ctx = multiprocessing.get_context("spawn")
    state = {"lock": ctx.Lock(), "next": ctx.Value("i", 0, lock=False),
             "calls": ctx.Value("i", 0, lock=False),
             "slot": ctx.Array("i", [-1] * (helpers + 1), lock=False)}
    reports = ctx.Queue()
    procs = []
    for me in range(1, helpers + 1):
        p = ctx.Process(target=_helper_main, daemon=True, args=(
            me, device, [tuple(s) for s in shapes], chunks, order, max_ms,
            state, reports))
        p.start()
        procs.append(p)
    ran = _drain(runner, chunks, order, state, 0)
    runner.close()
    got, failures = _wait(state, len(order), procs, reports)
    return ([u for i in ran for u in unit_chunks[i]],
            {"calls": state["calls"].value,
             "helper_chunks": [r["chunks"] for r in got if r["ok"]],
             "helper_startup_s": [r["startup_s"] for r in got if r["ok"]],
             "helper_failures": failures, "slow_calls": runner.slow_calls})


def _wait(state, n, procs, reports):
    """Waits until every chunk is taken and no live helper is in the middle
    of one. A helper that reported a failure or died is logged and no
    longer waited for. Returns (reports, failures)."""
    got, failures, gone = [], [], set()
    while True:
        _drain_queue(reports, got)
        for me, p in enumerate(procs, 1):
            if me in gone:
                continue
            error = next((r["error"] for r in got
                          if not r["ok"] and r.get("me") == me), None)
            if error is None and p.exitcode not in (None, 0):
                time.sleep(0.1)  # a report it wrote before dying comes first
                _drain_queue(reports, got)
                error = next((r["error"] for r in got
                              if not r["ok"] and r.get("me") == me),
                             "exited with code %s" % p.exitcode)
            if error is not None:
                gone.add(me)
                failures.append(error)
                logger.warning("tpjit.deep_gemm: warm-up helper %d failed; "
                               "its chunk is left to the finishing sweep: %s",
                               me, error)
        with state["lock"]:
            busy = [me for me in range(1, len(procs) + 1)
                    if state["slot"][me] != -1 and me not in gone]
            finished = state["next"].value >= n and not busy
        if finished:
            return got, failures
        time.sleep(0.01)


def _drain_queue(reports, got):
    while True:
        try:
            got.append(reports.get_nowait())
        except queue_module.Empty:
            return got
