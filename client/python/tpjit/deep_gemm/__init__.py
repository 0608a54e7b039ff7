"""tpjit.deep_gemm: DeepGEMM's JIT through tpjitd, DeepGEMM unchanged.

    import tpjit.deep_gemm as tdg
    tdg.enable(group="deepseek-v3-tp8")     # before DeepGEMM compiles
    shapes = tdg.shapes_from_spec("specs/deepseek-v3-tp8.json")
    times = tdg.warmup(shapes, rank, world, policy="FAST", helpers=1)

For SGLang (and a no-op elsewhere): `tpjit.deep_gemm.install_hook()` in the
server process, or TPJIT_DEEP_GEMM=1 in the environment of a Python that has
the package pip-installed (its tpjit_deep_gemm.pth calls install_hook() at
start-up). vLLM: enable() (or TPJIT_DEEP_GEMM=1) is the switch; every rank
then compiles through tpjitd, which runs each kernel once.

Importing this package imports neither torch nor deep_gemm.
"""

from tpjit.deep_gemm.env import (NvrtcModeWarning, enable, enabled,
                                 find_wrapper, nvrtc_mode)
from tpjit.deep_gemm.hook import install_hook
from tpjit.deep_gemm.plan import (Shape, m_list, rank_parts, shape_m_list,
                                  shapes_from_spec, split, units)


def warmup(shapes, rank=0, world=1, **options):
    """See tpjit.deep_gemm.sweep.warmup (needs torch and deep_gemm)."""
    from tpjit.deep_gemm import sweep
    return sweep.warmup(shapes, rank, world, **options)


__all__ = ["NvrtcModeWarning", "Shape", "enable", "enabled", "find_wrapper",
           "install_hook", "m_list", "nvrtc_mode", "rank_parts", "shape_m_list",
           "shapes_from_spec", "split", "units", "warmup"]
