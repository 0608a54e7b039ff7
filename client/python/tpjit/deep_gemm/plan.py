"""The M sweep of SGLang's DeepGEMM warm-up, as data, and its split.

Pure Python (no torch, no deep_gemm): the M lists (SGLang's FAST and FULL
rules, the contiguous-layout alignment), the kernel kinds and shapes, a cost
model and the split of one sweep into disjoint, cost-balanced parts (TP ranks,
then helper processes of a rank). Everything here is deterministic: every
rank computes the same plan from the same arguments.
"""

import collections
import json

# tpjit's family ids (docs/design.md) -> the DeepGEMM call that SGLang's warm-up
# makes for that kind. "contig" kinds keep only Ms aligned to the
# contiguous-layout alignment; "masked" kinds pass M as expected_m.
KINDS = {
    "fp8_gemm_nt": "fp8_gemm_nt",
    "fp8_grouped_gemm_nt_contig": "m_grouped_fp8_gemm_nt_contiguous",
    "fp8_grouped_gemm_nt_masked": "fp8_m_grouped_gemm_nt_masked",
    "bf16_gemm_nt_f32": "bf16_gemm_nt",
    "bf16_grouped_gemm_nt_contig": "m_grouped_bf16_gemm_nt_contiguous",
    "bf16_grouped_gemm_nt_masked": "m_grouped_bf16_gemm_nt_masked",
}

# SGLang's DeepGemmKernelType names -> tpjit kinds (for the hook).
SGLANG_KINDS = {
    "GEMM_NT_F8F8BF16": "fp8_gemm_nt",
    "GROUPED_GEMM_NT_F8F8BF16_CONTIG": "fp8_grouped_gemm_nt_contig",
    "GROUPED_GEMM_NT_F8F8BF16_MASKED": "fp8_grouped_gemm_nt_masked",
    "GEMM_NT_BF16BF16F32": "bf16_gemm_nt_f32",
    "GROUPED_GEMM_NT_BF16_CONTIG": "bf16_grouped_gemm_nt_contig",
    "GROUPED_GEMM_NT_BF16_MASKED": "bf16_grouped_gemm_nt_masked",
}

DEFAULT_CONTIG_ALIGNMENT = 128  # deep_gemm.get_mk_alignment_for_contiguous_layout() on sm90


class Shape(collections.namedtuple("Shape", "kind n k num_groups")):
    """One GEMM kind of a model: tpjit family id, N, K, groups (1 for dense)."""

    def __new__(cls, kind, n, k, num_groups=1):
        if kind not in KINDS:
            raise ValueError("unknown kind %r (want one of %s)" %
                             (kind, ", ".join(sorted(KINDS))))
        return super().__new__(cls, kind, int(n), int(k), int(num_groups))

    @property
    def contig(self):
        return self.kind.endswith("_contig")

    @property
    def masked(self):
        return self.kind.endswith("_masked")

    def label(self):
        g = "" if self.num_groups == 1 else " g=%d" % self.num_groups
        return "%s n=%d k=%d%s" % (self.kind, self.n, self.k, g)


def shapes_from_spec(spec, kinds=None):
    """The shapes of a tpjit WarmupSpec (path, JSON text or dict) that
    DeepGEMM serves, in spec order; `kinds` keeps only those families."""
    if isinstance(spec, str):
        text = spec
        if not text.lstrip().startswith("{"):
            with open(text, encoding="utf-8") as f:
                text = f.read()
        spec = json.loads(text)
    out = []
    for s in spec.get("shapes", []):
        kind = s["family"]
        if kind in KINDS and (kinds is None or kind in kinds):
            out.append(Shape(kind, s["n"], s["k"], s.get("numGroups", 1)))
    return out


def m_list(policy="FAST", chunked_prefill_size=8192):
    """SGLang's warm-up M list (deep_gemm_wrapper/compile_utils.py,
    update_deep_gemm_config). FAST (SGLANG_JIT_DEEPGEMM_FAST_WARMUP=1): every
    M in 1..1024, then from 1024 a step of 2 that doubles with each
    power-of-two range up to min(chunked_prefill_size, 32768) (16384 when
    chunked prefill is off, < 1), plus that maximum. FULL: 1..m_max with
    m_max 16384, 65536 when chunked prefill is off, 2*chunked_prefill_size
    when it is > 8192, capped at 131072."""
    cps = chunked_prefill_size
    policy = policy.upper()
    if policy == "FAST":
        ms = list(range(1, 1025))
        next_m, step = 1024, 2
        top = min(cps, 32 * 1024) if cps >= 1 else 16 * 1024
        while next_m < top:
            ms += range(next_m, 2 * next_m, step)
            next_m, step = next_m * 2, step * 2
        ms.append(top)
        return sorted(set(ms))
    if policy == "FULL":
        m_max = 16 * 1024
        if cps < 1:
            m_max = 64 * 1024
        elif cps > 8192:
            m_max = cps * 2
        return list(range(1, min(128 * 1024, m_max) + 1))
    raise ValueError("policy must be FAST or FULL, not %r" % policy)


def shape_m_list(shape, ms, alignment=DEFAULT_CONTIG_ALIGNMENT):
    """The Ms SGLang sweeps for `shape`: contiguous-layout kinds keep the
    multiples of the alignment, sorted and unique."""
    if shape.contig:
        return sorted(set(m for m in ms if m % alignment == 0))
    return list(ms)


def config_class(shape, m, alignment=DEFAULT_CONTIG_ALIGNMENT):
    """Ms of one class get the same DeepGEMM sm90 config: its heuristic sees
    M only through ceil(M / block_m) for block_m in {16, 32} (M <= 32 only),
    64, 128, 256, or the alignment for contiguous layouts. A cost unit, not a
    promise: neighbouring classes often share a kernel too."""
    if shape.contig:
        return m // alignment
    if m <= 32:
        return -2 + (m > 16)
    return (m + 63) // 64


# The cost model (seconds): a class may need one nvcc compile (~4 s for an
# sm90 FP8 kernel on an H200 host); each M costs a launch plus its FLOPs.
COMPILE_SECONDS = 4.0
LAUNCH_SECONDS = 20e-6
FLOPS_PER_SECOND = 4e14


def m_cost(shape, m):
    if shape.masked:
        return LAUNCH_SECONDS  # masked_m is 0: the kernel does no work
    return LAUNCH_SECONDS + 2.0 * m * shape.n * shape.k / FLOPS_PER_SECOND


Unit = collections.namedtuple("Unit", "shape_index ms cost")


def units(shapes, ms, alignment=DEFAULT_CONTIG_ALIGNMENT,
          compile_seconds=COMPILE_SECONDS):
    """The sweep as an ordered list of Units (one config class of one shape:
    its Ms in sweep order and its estimated cost), shape by shape."""
    out = []
    for i, shape in enumerate(shapes):
        by_class = collections.OrderedDict()
        for m in shape_m_list(shape, ms, alignment):
            by_class.setdefault(config_class(shape, m, alignment), []).append(m)
        for group in by_class.values():
            cost = compile_seconds + sum(m_cost(shape, m) for m in group)
            out.append(Unit(i, tuple(group), cost))
    return out


def split(items, parts, chunks_per_part=4, cost=lambda u: u.cost):
    """Splits the ordered `items` into `parts` disjoint lists that together
    hold every item once, each in the original order, balanced by `cost`.

    The sequence is cut into at most chunks_per_part * parts contiguous
    chunks of near-equal cost (neighbours often share a kernel, so they stay
    together), then the chunks are dealt out largest first to the least
    loaded part (LPT). Every part's load is at most the mean plus the largest
    chunk. Deterministic: ties go to the lower part index."""
    if parts < 1:
        raise ValueError("parts must be >= 1")
    items = list(items)
    n_chunks = max(1, min(len(items), chunks_per_part * parts))
    chunks = _chunk_indices(items, n_chunks, cost)
    loads = [0.0] * parts
    owner = {}
    order = sorted(range(len(chunks)),
                   key=lambda c: (-sum(cost(items[i]) for i in chunks[c]), c))
    for c in order:
        p = min(range(parts), key=lambda j: (loads[j], j))
        loads[p] += sum(cost(items[i]) for i in chunks[c])
        for i in chunks[c]:
            owner[i] = p
    return [[items[i] for i in range(len(items)) if owner[i] == p]
            for p in range(parts)]


def _chunk_indices(items, n_chunks, cost):
    """Indexes of `items` in at most n_chunks contiguous, non-empty runs of
    near-equal cost: each item goes where the middle of its cost falls."""
    total = sum(cost(u) for u in items) or 1.0
    by_chunk = collections.OrderedDict()
    acc = 0.0
    for i, u in enumerate(items):
        c = cost(u)
        chunk = min(n_chunks - 1, int((acc + c / 2.0) / total * n_chunks))
        by_chunk.setdefault(chunk, []).append(i)
        acc += c
    return list(by_chunk.values())


def chunk(items, n_chunks, cost=lambda u: u.cost):
    """`items` (in order) as at most n_chunks contiguous lists of near-equal
    cost."""
    items = list(items)
    if not items:
        return []
    return [[items[i] for i in c]
            for c in _chunk_indices(items, max(1, n_chunks), cost)]


def spread_order(n):
    """0..n-1 in an order whose every prefix is spread evenly over the range
    (the van der Corput sequence): processes that take chunks in this order
    start far apart in M, where different kernels are likely."""
    order, seen, k = [], set(), 0
    while len(order) < n:
        v, denom, x = 0.0, 1.0, k
        while x:
            denom *= 2
            v += (x & 1) / denom
            x >>= 1
        i = int(v * n)
        if i not in seen:
            seen.add(i)
            order.append(i)
        k += 1
    return order


def part_loads(parts, cost=lambda u: u.cost):
    return [sum(cost(u) for u in p) for p in parts]


def rank_parts(shapes, ms, world, alignment=DEFAULT_CONTIG_ALIGNMENT,
         chunks_per_part=4):
    """Per rank of `world`, its Units of the sweep of `shapes` over `ms`."""
    return split(units(shapes, ms, alignment), world, chunks_per_part)


def work_of(part):
    """A part as [(shape_index, [m, ...]), ...] in sweep order."""
    out = []
    for u in part:
        if out and out[-1][0] == u.shape_index:
            out[-1][1].extend(u.ms)
        else:
            out.append((u.shape_index, list(u.ms)))
    return out


def max_m_for_memory(shape, max_m, budget_gb):
    """SGLang's rule: halve max_m (not below 4096) while the warm-up buffers
    need more than `budget_gb` GiB."""
    while memory_gb(shape, max_m) > budget_gb and max_m > 4096:
        max_m //= 2
    return max_m


def memory_gb(shape, max_m):
    """GiB of the warm-up buffers of `shape` at `max_m` (as SGLang counts)."""
    n, k, g = shape.n, shape.k, shape.num_groups
    ab = 2 if shape.kind.startswith("bf16") else 1
    if shape.masked:
        size = g * max_m * k * ab + g * n * k * ab + g * 4 + g * max_m * n * 2
    elif shape.contig:
        size = max_m * k * ab + g * n * k * ab + max_m * 4 + max_m * n * 2
    else:
        out = 4 if shape.kind == "bf16_gemm_nt_f32" else 2
        size = max_m * k * ab + n * k * ab + max_m * n * out
    return size / float(1 << 30)


__all__ = ["KINDS", "SGLANG_KINDS", "Shape", "Unit", "chunk", "config_class",
           "m_list", "part_loads", "rank_parts", "shape_m_list", "shapes_from_spec",
           "split", "spread_order", "units", "work_of"]
