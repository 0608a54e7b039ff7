"""Imported at interpreter start-up by tpjit_deep_gemm.pth when
TPJIT_DEEP_GEMM=1: enable() and a deferred install_hook() (sys.path may not
be complete yet, so sglang is looked for when it is imported, not now).
Never raises (a server start must not fail because of tpjit); problems are
logged. Imports neither grpc nor torch."""

import logging

try:
    from tpjit.deep_gemm import env as _env, hook as _hook
    _env.enable()
    _hook.install_deferred({})
except Exception:  # noqa: BLE001
    logging.getLogger("tpjit.deep_gemm").exception(
        "TPJIT_DEEP_GEMM=1: installing the hook failed; DeepGEMM unchanged")
