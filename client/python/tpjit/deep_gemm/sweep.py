"""The split warm-up: each TP rank sweeps its part of SGLang's M sweep (with
optional helper processes on the same GPU, so several nvcc run per rank), the
ranks meet at a tpjit barrier, then each rank runs the rest of the sweep on
cache hits so every kernel is loaded in every rank.

Needs torch and deep_gemm (imported when a sweep runs, not at import). One
warmup() call at a time per process; the DeepGEMM calls are the ones SGLang's
warm-up executors make (same tensors' shapes, dtypes and scale layouts).
"""

import logging
import multiprocessing
import os
import re
import time

from tpjit.deep_gemm import env, plan, pool

logger = logging.getLogger("tpjit.deep_gemm")

BLOCK = 128  # scale-factor granularity of the FP8 recipes (1x128, 128x128)


class Executor:
    """Buffers sized for `max_m` and one DeepGEMM call per M, as SGLang's
    warm-up executor of that kind: A scales per 1x128 (float32, [.., M,
    K/128]), B scales per 128x128 block ([.., N/128, K/128]); contiguous
    layouts map every row to group 0; masked kinds pass M as expected_m with
    masked_m = 0."""

    def __init__(self, shape, max_m, torch, deep_gemm, device="cuda"):
        self.shape, self.dg = shape, deep_gemm
        n, k, g = shape.n, shape.k, shape.num_groups
        t = torch
        cdiv = lambda a, b: -(-a // b)  # noqa: E731
        fp8 = not shape.kind.startswith("bf16")
        rows = (g, max_m) if shape.masked else (max_m,)
        bshape = (g, n, k) if g > 1 or shape.contig or shape.masked else (n, k)
        if fp8:
            self.a = (t.empty(*rows, k, device=device, dtype=t.float8_e4m3fn),
                      t.ones(*rows, cdiv(k, BLOCK), device=device,
                             dtype=t.float32))
            self.b = (t.empty(*bshape, device=device, dtype=t.float8_e4m3fn),
                      t.ones(*bshape[:-2], cdiv(n, BLOCK), cdiv(k, BLOCK),
                             device=device, dtype=t.float32))
        else:
            self.a = t.empty(*rows, k, device=device, dtype=t.bfloat16)
            self.b = t.empty(*bshape, device=device, dtype=t.bfloat16)
        out_dtype = t.float32 if shape.kind == "bf16_gemm_nt_f32" else t.bfloat16
        self.d = t.empty(*rows, n, device=device, dtype=out_dtype)
        if shape.contig:
            self.layout = t.zeros(max_m, device=device, dtype=t.int32)
        if shape.masked:
            self.masked_m = t.zeros(g, device=device, dtype=t.int32)

    def run(self, m):
        dg, s = self.dg, self.shape
        fp8 = not s.kind.startswith("bf16")
        if s.masked:
            fn = (dg.fp8_m_grouped_gemm_nt_masked if fp8
                  else dg.m_grouped_bf16_gemm_nt_masked)
            fn(self.a, self.b, self.d, self.masked_m, m)
            return
        a = (self.a[0][:m], self.a[1][:m]) if fp8 else self.a[:m]
        if s.contig:
            fn = (dg.m_grouped_fp8_gemm_nt_contiguous if fp8
                  else dg.m_grouped_bf16_gemm_nt_contiguous)
            fn(a, self.b, self.d[:m], self.layout[:m])
        elif fp8:
            dg.fp8_gemm_nt(a, self.b, self.d[:m])
        else:
            dg.bf16_gemm_nt(a, self.b, self.d[:m])


def run_work(shapes, work, max_ms=None):
    """Runs [(shape_index, [m, ...]), ...] on the current CUDA device; one
    executor per shape (buffers for the largest M of the shape, or
    max_ms[shape_index]). Returns the number of calls."""
    import torch
    import deep_gemm
    calls = 0
    for index, ms in work:
        if not ms:
            continue
        max_m = max(ms) if max_ms is None else max_ms[index]
        ex = Executor(shapes[index], max_m, torch, deep_gemm)
        for m in ms:
            ex.run(m)
            calls += 1
        torch.cuda.current_stream().synchronize()
        del ex
    return calls


def default_barrier_group(group=None):
    """The barrier group of one server start: the deployment group (or
    "deepgemm") and the id of the ranks' common parent process (the
    launcher), so a restarted job does not meet a stale one."""
    base = group or os.environ.get(env.GROUP_ENV) or "deepgemm"
    return "%s@%d" % (base, os.getppid())


def warmup(shapes, rank=0, world=1, policy="FAST",
           chunked_prefill_size=8192, m_values=None, helpers=0, group=None,
           barrier_group=None, barrier_timeout=None, on_timeout=None,
           socket=None, chunks_per_part=4, finish=True,
           memory_budget_gb=None, ahead=None):
    """Warms DeepGEMM up for `shapes` (plan.Shape list) as `rank` of `world`.

    0. discover (`ahead`; default: when DeepGEMM compiles through
       tpjit-nvcc): one DeepGEMM call per config class of this rank's part
       with TPJIT_NVCC_NO_WAIT=1, so each kernel DeepGEMM lacks is queued in
       tpjitd at once (the call fails fast and is caught; DeepGEMM's
       "compilation failed" print is silenced) and tpjitd compiles them all
       in parallel on every worker; in rounds, because a DeepGEMM call may
       need kernels one after another (discover());
    1. compile: this rank runs its disjoint, cost-balanced part of SGLang's
       sweep (M list `policy` / `chunked_prefill_size`, or `m_values`),
       shared with `helpers` spawned processes on the same GPU (pool.py:
       chunks from one counter; a failed helper's chunk is left to 3.);
    2. barrier: the ranks meet at tpjitd's barrier (group `barrier_group`,
       default default_barrier_group(group)), `barrier_timeout` seconds
       ($TPJIT_BARRIER_TIMEOUT, default 600). A late rank raises
       tpjit.BarrierTimeout naming it, unless on_timeout="continue"
       ($TPJIT_BARRIER_ON_TIMEOUT); an unreachable daemon logs a warning and
       goes on (the finish still compiles whatever is missing);
    3. finish: the rest of the sweep in this process, on cache hits.

    Buffers follow SGLang's memory rule (max M halved, not below 4096, while
    they would not fit), with `memory_budget_gb` (default: the GPU's free
    memory) shared by this process and its helpers.

    Call enable() first so compiles go through tpjitd. Returns a dict:
    seconds per phase ("plan", "compile", "barrier", "finish", "total"),
    counts and the barrier's outcome."""
    import torch
    import deep_gemm
    t0 = time.monotonic()
    shapes = [s if isinstance(s, plan.Shape) else plan.Shape(*s)
              for s in shapes]
    if helpers and multiprocessing.current_process().daemon:
        logger.warning("tpjit.deep_gemm: a daemonic process cannot start "
                       "helper processes; sweeping without them")
        helpers = 0
    align = deep_gemm.get_mk_alignment_for_contiguous_layout()
    ms = list(m_values) if m_values is not None else plan.m_list(
        policy, chunked_prefill_size)
    max_ms = _max_ms(shapes, ms, align, memory_budget_gb, helpers, torch)
    ms_by_shape = [[m for m in plan.shape_m_list(s, ms, align)
                    if m <= max_ms[i]] for i, s in enumerate(shapes)]
    units = [u for u in plan.units(shapes, ms, align)
             if u.ms[0] <= max_ms[u.shape_index]]
    units = [plan.Unit(u.shape_index, tuple(m for m in u.ms
                                            if m <= max_ms[u.shape_index]),
                       u.cost) for u in units]
    mine = plan.split(units, world, chunks_per_part)[rank]
    if ahead is None:
        ahead = env.enabled()
    discovered = discover(shapes, mine, max_ms, socket) if ahead else {}
    t1 = time.monotonic()
    ran_here, stats = pool.run(shapes, mine, max_ms,
                               torch.cuda.current_device(), helpers,
                               chunks_per_part)
    t2 = time.monotonic()
    outcome = _meet(world, rank, group, barrier_group, barrier_timeout,
                    on_timeout, socket)
    t3 = time.monotonic()
    done_here = {(u.shape_index, m) for u in ran_here for m in u.ms}
    rest = [(i, [m for m in ms_by_shape[i] if (i, m) not in done_here])
            for i in range(len(shapes))]
    finish_calls = run_work(shapes, rest, max_ms) if finish else 0
    t4 = time.monotonic()
    result = {
        "rank": rank, "world": world, "helpers": helpers,
        "shapes": len(shapes), "m_values": len(ms),
        "sweep_calls": sum(len(x) for x in ms_by_shape),
        "units": len(units), "units_mine": len(mine),
        "compile_calls": stats["calls"], "finish_calls": finish_calls,
        "helper_chunks": stats["helper_chunks"],
        "helper_startup_s": stats["helper_startup_s"],
        "helper_failures": stats["helper_failures"],
        "seconds": {"plan": t1 - t0 - discovered.get("seconds", 0.0),
                    "discover": discovered.get("seconds", 0.0),
                    "compile": t2 - t1, "barrier": t3 - t2,
                    "finish": t4 - t3, "total": t4 - t0},
        "discover_calls": discovered.get("calls", 0),
        "discover_queued": discovered.get("queued", 0),
        "discover_rounds": discovered.get("rounds", 0),
        "discover_keys": discovered.get("keys", 0),
        "discover_await_s": discovered.get("await_seconds", 0.0),
        "discover_messages": discovered.get("messages", {}),
        "discover_error": discovered.get("error"),
        "slow_calls": stats.get("slow_calls", []),
    }
    result.update(outcome)
    logger.info("tpjit.deep_gemm.warmup rank %d/%d: %s", rank, world,
                result["seconds"])
    return result


NO_WAIT_ENV = "TPJIT_NVCC_NO_WAIT"


QUEUED_KEY = re.compile(r"tpjit-nvcc: queued in tpjitd \(key ([0-9a-f]{64})\)")
MAX_DISCOVER_TRIES = 8  # calls per unit
AWAIT_BATCH = 4096  # keys per AwaitKeys call (the daemon's bound)
SOCKET_ENV = "TPJIT_SOCKET"
DISCOVER_AWAIT_TIMEOUT = 1800.0


def discover(shapes, part, max_ms, socket=None,
             await_timeout=DISCOVER_AWAIT_TIMEOUT):
    """Step 0 of warmup(): the first M of every unit (config class) of
    `part`, called with TPJIT_NVCC_NO_WAIT=1. A kernel tpjitd holds is
    served and loaded as usual; one it lacks is queued there and DeepGEMM
    raises (caught; the key is in tpjit-nvcc's "queued" line).

    One DeepGEMM call may need several kernels, one after the other (on
    sm90 the FP8 GEMMs first run scale-factor layout kernels of the shape),
    and a call stops at the first one missing. So a unit that raised waits
    on the key it stopped at, and is called again as soon as that kernel is
    compiled (AwaitKeys with `any`: the first of the awaited keys to end),
    until every unit has passed with all its kernels or has no key to wait
    for. The GEMM kernels of all units compile at once, each layout kernel
    once. While nothing is compiled, one call per shape stands for all of
    the shape's units (each ~10 ms call counts: a rank has ~100 units).
    Returns {"calls", "queued", "rounds" (passes of calls), "keys",
    "seconds", "await_seconds", "messages", "error" (why the wait for the
    queued kernels ended early, e.g. tpjitd went away; None if it did
    not)}."""
    import torch
    import deep_gemm
    import tpjit
    t0 = time.monotonic()
    d = _Discovery(shapes, max_ms, torch, deep_gemm)
    ready = list(part)   # units to call now
    previous = os.environ.get(NO_WAIT_ENV)
    os.environ[NO_WAIT_ENV] = "1"
    # tpjit-nvcc and the await below must reach the same tpjitd.
    previous_socket = os.environ.get(SOCKET_ENV)
    if socket:
        os.environ[SOCKET_ENV] = socket
    client = None
    try:
        while ready or d.blocked:
            if ready:
                d.call(ready)
                ready = []
            if not d.blocked:
                break
            before = len(d.blocked)
            t = time.monotonic()
            try:
                if client is None:
                    client = tpjit.Client(socket, call_timeout=await_timeout)
                states = client.await_keys(sorted(d.blocked)[:AWAIT_BATCH],
                                           any=True)
            except tpjit.TpjitError as e:
                d.error = "waiting for %d queued kernels failed: %s" % (
                    len(d.blocked), e)
                logger.warning("tpjit.deep_gemm: %s; the sweep compiles "
                               "what is missing", d.error)
                d.awaited += time.monotonic() - t
                break
            d.awaited += time.monotonic() - t
            ready = d.release(states)
            if not ready and len(d.blocked) == before:
                break  # an answer with nothing ended: do not spin
    finally:
        if client is not None:
            client.close()
        for name, value in ((NO_WAIT_ENV, previous),
                            (SOCKET_ENV, previous_socket)):
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return {"calls": d.calls, "queued": d.queued, "rounds": d.passes,
            "keys": len(d.seen), "seconds": time.monotonic() - t0,
            "await_seconds": d.awaited, "error": d.error,
            "messages": _tally("\n".join(d.texts))}


class _Discovery:
    """discover()'s state: which units wait on which queued key, and what
    its calls found."""

    def __init__(self, shapes, max_ms, torch, deep_gemm):
        self.shapes, self.max_ms = shapes, max_ms
        self.torch, self.deep_gemm = torch, deep_gemm
        self.calls = self.queued = self.passes = 0
        self.awaited = 0.0
        self.error = None
        self.seen = set()
        self.texts = []
        self.tries = {}
        self.blocked = {}    # key -> units waiting for it
        # First pass: every unit of a shape stops at the same first kernel
        # (the shape's layout kernel) while nothing is compiled, so one call
        # per shape finds it; the shape's other units wait on it uncalled
        # (were one to need another kernel first, it would find it when
        # called later).
        self.probed = {}     # shape index -> the key its first unit hit
        self.published_for = {}  # unit -> the key it was last told is compiled

    def call(self, ready):
        """One pass: calls each unit of `ready` (one executor per shape in
        turn); a unit that stops at a queued key waits on it."""
        self.passes += 1
        ready.sort(key=lambda u: u.shape_index)
        with _quiet_stdout() as quiet:
            executor, index = None, None
            for u in ready:
                if self.passes == 1 and u.shape_index in self.probed:
                    # Not called: it stops at the same kernel.
                    self.blocked[self.probed[u.shape_index]].append(u)
                    continue
                if u.shape_index != index:
                    executor = None
                    executor = Executor(self.shapes[u.shape_index],
                                        self.max_ms[u.shape_index],
                                        self.torch, self.deep_gemm)
                    index = u.shape_index
                self._call_one(executor, u, quiet)
            executor = None
            self.torch.cuda.current_stream().synchronize()

    def _call_one(self, executor, u, quiet):
        self.calls += 1
        self.tries[u] = self.tries.get(u, 0) + 1
        try:
            executor.run(u.ms[0])
            quiet.take()
            return
        except RuntimeError as e:  # queued (or unreachable)
            self.queued += 1
            text = quiet.take() + "\n" + str(e)
        if len(self.texts) < 2000:
            self.texts.append(text)
        keys = QUEUED_KEY.findall(text)
        # Not queued (tpjitd unreachable, a failure), or stopped again at
        # the key it was told is compiled (not served from the cache): the
        # sweep compiles it its own way.
        if (keys and self.tries[u] < MAX_DISCOVER_TRIES and
                keys[-1] != self.published_for.get(u)):
            self.blocked.setdefault(keys[-1], []).append(u)
            self.seen.add(keys[-1])
            if self.passes == 1:
                self.probed[u.shape_index] = keys[-1]

    def release(self, states):
        """The units to call again after an AwaitKeys answer `states`."""
        ready = []
        for key, state in states.items():
            if state == "IN_FLIGHT" or key not in self.blocked:
                continue
            units = self.blocked.pop(key)
            if state == "PUBLISHED":
                ready.extend(units)
                for u in units:
                    self.published_for[u] = key
            else:
                # FAILED, UNKNOWN: the units that stopped at it meet the
                # error in the sweep; those held back uncalled behind a
                # shape's first call (which may need other kernels) go on.
                ready.extend(u for u in units if u not in self.tries)
        return ready


def _tally(text):
    """tpjit-nvcc's lines in DeepGEMM's prints, counted by message (the
    kernel-specific part of none): what the discovery's calls got."""
    counts = {}
    for line in text.splitlines():
        at = line.find("tpjit-nvcc: ")
        if at >= 0:
            key = re.sub(r"\(key [0-9a-f]{64}\)", "(key ...)",
                         line[at:at + 300])[:200]
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:10])


class _quiet_stdout:
    """Sends file descriptor 1 to a temp file (DeepGEMM prints each failed
    compile with printf), flushing C and Python buffers at both ends; take()
    reads what was written since the last take()."""

    def __enter__(self):
        import ctypes
        import sys
        import tempfile
        self._fflush = ctypes.CDLL(None).fflush
        sys.stdout.flush()
        self._fflush(None)
        self._saved = os.dup(1)
        self._file = tempfile.TemporaryFile()
        self._taken = 0
        os.dup2(self._file.fileno(), 1)
        return self

    def take(self):
        """The text written since the last take() (flushed first)."""
        import sys
        sys.stdout.flush()
        self._fflush(None)
        start = self._taken
        end = os.fstat(self._file.fileno()).st_size
        self._taken = end
        if end <= start:
            return ""
        start = max(start, end - (1 << 20))  # the last MiB: the last lines
        return os.pread(self._file.fileno(), end - start, start).decode(
            "utf-8", "replace")

    def __exit__(self, *exc):
        import sys
        sys.stdout.flush()
        self._fflush(None)
        os.dup2(self._saved, 1)
        os.close(self._saved)
        self._file.close()
        return False


HELPER_CONTEXT_GB = 0.75  # a helper's CUDA context and allocator slack


def _max_ms(shapes, ms, align, budget_gb, helpers, torch):
    """Per shape, the largest M its buffers can hold (SGLang's rule), with
    the GPU's free memory shared by this process and its helpers."""
    if budget_gb is None:
        free, _ = torch.cuda.mem_get_info()
        budget_gb = free / float(1 << 30)
    budget_gb = (budget_gb - helpers * HELPER_CONTEXT_GB) / (helpers + 1)
    out = []
    for s in shapes:
        top = max(plan.shape_m_list(s, ms, align) or [1])
        out.append(plan.max_m_for_memory(s, top, budget_gb))
    return out


def _meet(world, rank, group, barrier_group, timeout, on_timeout, socket):
    import tpjit
    if timeout is None:
        timeout = float(os.environ.get("TPJIT_BARRIER_TIMEOUT", "600"))
    on_timeout = on_timeout or os.environ.get("TPJIT_BARRIER_ON_TIMEOUT",
                                              "fail")
    name = barrier_group or default_barrier_group(group)
    out = {"barrier_group": name, "barrier": "ok"}
    try:
        reply = tpjit.barrier(name, rank, world, timeout, socket=socket)
        out.update(barrier_epoch=reply.epoch,
                   barrier_waited_ms=reply.waited_ms)
    except tpjit.BarrierTimeout as e:
        if on_timeout != "continue":
            raise
        logger.warning("tpjit.deep_gemm: %s; continuing", e)
        out.update(barrier="timeout", barrier_error=str(e),
                   late_ranks=e.late_ranks)
    except tpjit.TpjitError as e:
        logger.warning("tpjit.deep_gemm: no barrier (%s); continuing", e)
        out.update(barrier="unavailable", barrier_error=str(e))
    return out
