"""Pointing DeepGEMM's JIT at tpjitd: DG_JIT_NVCC_COMPILER -> tpjit-nvcc.

DeepGEMM reads its compiler from DG_JIT_NVCC_COMPILER at its first compile
(it runs `<compiler> --version` then `cd <tmp> && <compiler> <src.cu> -cubin
-o <out> <flags>`). tpjit-nvcc sends that compile to tpjitd and falls back to
the real nvcc when the daemon is unreachable, so enabling never makes a start
fail. Call enable() before DeepGEMM compiles anything (best: before `import
deep_gemm`). Not thread-safe (it writes os.environ).
"""

import importlib.util
import logging
import os
import shutil
import threading
import warnings

logger = logging.getLogger("tpjit.deep_gemm")

WRAPPER_NAME = "tpjit-nvcc"
WRAPPER_ENV = "TPJIT_NVCC_WRAPPER"
GROUP_ENV = "TPJIT_GROUP"
SWITCH_ENV = "TPJIT_DEEP_GEMM"


class NvrtcModeWarning(UserWarning):
    """DeepGEMM's NVRTC mode compiles in-process and bypasses tpjit-nvcc."""


def packaged_wrapper():
    """tpjit/bin/tpjit-nvcc next to this package, or None."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    beside = os.path.join(package, "bin", WRAPPER_NAME)
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    return None


def find_wrapper(nvcc_wrapper=None):
    """The tpjit-nvcc to use: `nvcc_wrapper` when given, else
    $TPJIT_NVCC_WRAPPER, else tpjit/bin/tpjit-nvcc next to this package (a
    wheel or build tree that carries it), else tpjit-nvcc on PATH. Returns
    an absolute path, or None when none is found. An explicit path that is
    not an executable file raises FileNotFoundError."""
    for explicit in (nvcc_wrapper, os.environ.get(WRAPPER_ENV)):
        if explicit:
            path = os.path.abspath(os.path.expanduser(explicit))
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                raise FileNotFoundError(
                    "tpjit-nvcc wrapper %s is not an executable file" % path)
            return path
    beside = packaged_wrapper()
    if beside:
        return beside
    found = shutil.which(WRAPPER_NAME)
    return os.path.abspath(found) if found else None


def nvrtc_mode():
    """True when DeepGEMM would compile with NVRTC: DG_JIT_USE_NVRTC=1, or
    SGLang's SGL_DG_USE_NVRTC=1 (SGLang copies it into DG_JIT_USE_NVRTC when
    its DeepGEMM wrapper is imported)."""
    for name in ("DG_JIT_USE_NVRTC", "SGL_DG_USE_NVRTC"):
        if os.environ.get(name, "0").strip() not in ("", "0"):
            return True
    return False


def enable(nvcc_wrapper=None, group=None, announce=True):
    """Routes DeepGEMM's nvcc compiles through tpjitd: sets
    DG_JIT_NVCC_COMPILER to tpjit-nvcc (see find_wrapper) and, when `group`
    is given, TPJIT_GROUP (the deployment whose recipe tpjitd records).
    Warns (warnings.warn and logging) when DeepGEMM's NVRTC mode is on, since
    it bypasses the compiler hook, and when no tpjit-nvcc is found (DeepGEMM
    then keeps its own nvcc). Must run before DeepGEMM's first compile.

    With `announce` and a group (TPJIT_GROUP), it also tells tpjitd in the
    background that the group is starting (a recipe prefetch, see
    announce()), so a node whose cache lacks the group's kernels compiles
    them while the server loads its weights, before the first DeepGEMM call.
    Returns the wrapper path, or None when none was found."""
    if group:
        os.environ[GROUP_ENV] = group
    wrapper = find_wrapper(nvcc_wrapper)
    if wrapper is None:
        _warn("tpjit.deep_gemm.enable: no %s found (set %s or put it on "
              "PATH); DeepGEMM keeps compiling with its own nvcc" %
              (WRAPPER_NAME, WRAPPER_ENV), RuntimeWarning)
    else:
        previous = os.environ.get("DG_JIT_NVCC_COMPILER")
        if previous and previous != wrapper:
            logger.info("DG_JIT_NVCC_COMPILER was %s; now %s", previous,
                        wrapper)
        os.environ["DG_JIT_NVCC_COMPILER"] = wrapper
        logger.info("DeepGEMM compiles through %s (group %s)", wrapper,
                    os.environ.get(GROUP_ENV, "<none>"))
    if announce and wrapper and os.environ.get(GROUP_ENV):
        globals()["last_announce"] = announce_start(os.environ[GROUP_ENV])
    if nvrtc_mode():
        _warn("tpjit.deep_gemm.enable: DeepGEMM's NVRTC mode is on "
              "(DG_JIT_USE_NVRTC=1 or SGL_DG_USE_NVRTC=1): it compiles "
              "in-process and bypasses tpjit-nvcc, so tpjitd serves nothing; "
              "unset it (SGLang's default is 0)", NvrtcModeWarning)
    return wrapper


last_announce = None  # the thread of enable()'s last announce (tests join it)


def deep_gemm_include_dir():
    """DeepGEMM's include directory (<package>/include, the -I of its
    compiles) found without importing it (no torch import), or None."""
    try:
        spec = importlib.util.find_spec("deep_gemm")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        include = os.path.join(location, "include")
        if os.path.isdir(include):
            return include
    return None


def announce_start(group, socket=None, timeout=5.0):
    """Starts, on a daemon thread, a recipe prefetch of `group` at tpjitd
    (Client.prefetch_recipe, with DeepGEMM's include directory of this
    install); returns the thread. Best effort: no daemon, no recipe yet
    (a first start) or an old daemon are logged at debug level only."""
    include = deep_gemm_include_dir()

    def run():
        import tpjit
        try:
            with tpjit.Client(socket, call_timeout=timeout) as client:
                reply = client.prefetch_recipe(
                    group, include_dirs=[include] if include else [])
            logger.info("tpjit: group %s announced: %d recipe entries, %d "
                        "cached, %d compiling", group, reply.entries,
                        reply.cached, reply.submitted)
        except Exception as e:  # noqa: BLE001 (best effort, never fatal)
            logger.debug("tpjit: announcing group %s: %s", group, e)

    thread = threading.Thread(target=run, name="tpjit-announce", daemon=True)
    thread.start()
    return thread


def enabled():
    """True when DeepGEMM's compiler variable names a tpjit-nvcc."""
    compiler = os.environ.get("DG_JIT_NVCC_COMPILER", "")
    return os.path.basename(compiler) == WRAPPER_NAME


def _warn(message, category):
    warnings.warn(message, category, stacklevel=3)
    logger.warning("%s", message)
