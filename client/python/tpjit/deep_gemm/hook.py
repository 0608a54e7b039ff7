"""install_hook(): SGLang's DeepGEMM warm-up, split across the TP ranks.

SGLang (python/sglang/srt/layers/deep_gemm_wrapper/compile_utils.py) warms a
(kernel type, N, K, groups) up the first time a forward pass meets it:
_maybe_compile_deep_gemm_one_type_all() sweeps every M of its list on the
first rank of the node only (_DO_COMPILE_ALL) while the other ranks wait at
the next collective. The hook replaces that function: every rank sweeps its
own disjoint part of the same M list (tpjit.deep_gemm.plan), the ranks meet
at tpjitd's barrier, then each rank runs the rest on cache hits. The kernel
calls stay SGLang's own (_compile_deep_gemm_one_type_all with a sub-list),
so its memory-budget rule and executors apply unchanged.

Without sglang the hook does nothing. When compile_utils is not imported yet
a one-shot import hook patches it right after it loads. Not thread-safe.
"""

import importlib.abc
import importlib.util
import logging
import os
import sys

from tpjit.deep_gemm import env, plan

logger = logging.getLogger("tpjit.deep_gemm")

TARGET = "sglang.srt.layers.deep_gemm_wrapper.compile_utils"
_PATCHED_FLAG = "_tpjit_patched"


def install_hook(rank=None, world=None, group=None, helpers=None,
                 barrier_timeout=None, enable_wrapper=True):
    """Patches SGLang's DeepGEMM warm-up when sglang is importable; returns
    "patched", "deferred" (patched when compile_utils is imported) or None
    (no sglang: nothing done). rank/world default to $TPJIT_RANK /
    $TPJIT_WORLD, else the TP group's (SGLang's, then torch.distributed);
    helpers to $TPJIT_DG_HELPERS (0). enable_wrapper also calls enable()."""
    if enable_wrapper:
        env.enable(group=group)
    options = {"rank": rank, "world": world, "group": group,
               "helpers": helpers, "barrier_timeout": barrier_timeout}
    module = sys.modules.get(TARGET)
    if module is not None:
        patch(module, **options)
        return "patched"
    try:
        if importlib.util.find_spec("sglang") is None:
            return None
    except (ImportError, ValueError):
        return None
    return install_deferred(options)


def install_deferred(options):
    """Patches compile_utils right after it is imported (patch() options)."""
    module = sys.modules.get(TARGET)
    if module is not None:
        patch(module, **options)
        return "patched"
    for finder in sys.meta_path:
        if isinstance(finder, _PatchOnImport):
            finder.options = options
            return "deferred"
    sys.meta_path.insert(0, _PatchOnImport(options))
    return "deferred"


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the real loader of TARGET so the module
    is patched right after it executes."""

    def __init__(self, options):
        self.options = options

    def find_spec(self, name, path=None, target=None):
        if name != TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader, self.options)
                return spec
        return None


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader, options):
        self.loader, self.options = loader, options

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        patch(module, **self.options)


def patch(module, rank=None, world=None, group=None, helpers=None,
          barrier_timeout=None):
    """Replaces module._maybe_compile_deep_gemm_one_type_all (idempotent)."""
    original = module._maybe_compile_deep_gemm_one_type_all
    if getattr(original, _PATCHED_FLAG, False):
        return
    compile_list = module._compile_deep_gemm_one_type_all

    def split_warmup(kernel_type, n, k, num_groups):
        key = (kernel_type, n, k, num_groups)
        if (not getattr(module, "_ENABLE_JIT_DEEPGEMM_PRECOMPILE", True) or
                module._INITIALIZATION_DICT.get(key) is not None):
            return
        module._INITIALIZATION_DICT[key] = True
        r, w = _rank_world(rank, world)
        kind = plan.SGLANG_KINDS.get(getattr(kernel_type, "name", ""))
        if kind is None or w <= 1:
            module._INITIALIZATION_DICT.pop(key)
            return original(kernel_type, n, k, num_groups)
        shape = plan.Shape(kind, n, k, num_groups)
        align = _alignment(module)
        ms = plan.shape_m_list(shape, list(module._BUILTIN_M_LIST), align)
        h = helpers if helpers is not None else int(
            os.environ.get("TPJIT_DG_HELPERS", "0"))
        from tpjit.deep_gemm import sweep
        if h > 0:
            # tpjit's executors (the same DeepGEMM calls) in helper
            # processes, then SGLang's own sweep of the whole list on hits.
            sweep.warmup([shape], r, w,
                         m_values=ms, helpers=h, group=group,
                         barrier_timeout=barrier_timeout, finish=False)
            return compile_list(kernel_type=kernel_type, n=n, k=k,
                                num_groups=num_groups, m_list=ms)
        mine = plan.split(plan.units([shape], ms, align), w)[r]
        my_ms = [m for u in mine for m in u.ms]
        logger.info("tpjit: DeepGEMM warm-up of <%s> N=%d K=%d groups=%d: "
                    "rank %d/%d sweeps %d of %d Ms", kind, n, k, num_groups,
                    r, w, len(my_ms), len(ms))
        if my_ms:
            compile_list(kernel_type=kernel_type, n=n, k=k,
                         num_groups=num_groups, m_list=my_ms)
        sweep._meet(w, r, group, None, barrier_timeout, None, None)
        mine_set = set(my_ms)
        rest = [m for m in ms if m not in mine_set]
        if rest:
            compile_list(kernel_type=kernel_type, n=n, k=k,
                         num_groups=num_groups, m_list=rest)

    setattr(split_warmup, _PATCHED_FLAG, True)
    split_warmup.__wrapped__ = original
    module._maybe_compile_deep_gemm_one_type_all = split_warmup
    logger.info("tpjit: patched %s._maybe_compile_deep_gemm_one_type_all",
                module.__name__)


def _alignment(module):
    dg = getattr(module, "deep_gemm", None)
    try:
        return dg.get_mk_alignment_for_contiguous_layout()
    except AttributeError:
        return plan.DEFAULT_CONTIG_ALIGNMENT


def _rank_world(rank, world):
    """This process's rank and the number of ranks that meet in this node's
    tpjitd: explicit values, else $TPJIT_RANK / $TPJIT_WORLD, else SGLang's
    TP group, else torch.distributed, else (0, 1). The TP group is right on
    one node; a TP group spanning nodes must set the node-local pair."""
    if rank is not None and world is not None:
        return rank, world
    if os.environ.get("TPJIT_RANK") and os.environ.get("TPJIT_WORLD"):
        return int(os.environ["TPJIT_RANK"]), int(os.environ["TPJIT_WORLD"])
    try:
        from sglang.srt.distributed import (get_tensor_model_parallel_rank,
                                            get_tensor_model_parallel_world_size)
        return (get_tensor_model_parallel_rank(),
                get_tensor_model_parallel_world_size())
    except Exception:  # no sglang, or its groups are not initialized
        pass
    try:
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except Exception:
        pass
    return 0, 1
