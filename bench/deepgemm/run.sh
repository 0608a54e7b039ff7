#!/usr/bin/env bash
# The DeepGEMM warm-up benchmark on a GPU machine, everything in one command:
# builds DeepGEMM from the staged snapshot (once per machine), pip-installs
# the tpjit package from this checkout, starts tpjitd from the staged build
# (scripts/gpu-deepgemm) and runs bench_deepgemm.py (all rows, then the
# bit-identity and SASS checks). Extra arguments go to bench_deepgemm.py.
#   bash bench/deepgemm/run.sh [--shapes 1,2] [--reps 1] [--ranks N] ...
# Results: $OUT (the device tool's) or bench/results/deepgemm-<date>/:
# raw.json, table.md, logs.tar.gz, python.txt. Exits non-zero on any failure.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
stage="${TPJIT_STAGE:-$root/.gpu-dg}"
export LD_LIBRARY_PATH="$stage/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export NCCL_NVLS_ENABLE=0
export CUDA_CACHE_DISABLE=1  # no driver compute cache in any timed compile
export PATH="/usr/local/cuda/bin:$PATH"
OUT="${OUT:-$root/bench/results/deepgemm-$(date -u +%Y%m%d-%H%M)}"
mkdir -p "$OUT"
for b in daemon/tpjitd daemon/tpjit-worker cli/tpjit bin/tpjit-nvcc \
         deepgemm/build-deepgemm.sh; do
  [[ -e "$stage/$b" ]] || {
    echo "run.sh: $stage/$b is missing: stage with scripts/gpu-deepgemm" >&2
    exit 1
  }
done
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nproc
  nvcc --version | tail -2; } | tee "$OUT/machine.txt"

# DeepGEMM (~95 s on a 16-core H200 host the first time; kept in /tmp).
t0=$(date +%s)
if ! python3 -c 'import deep_gemm' >/dev/null 2>&1; then
  dg_env="$(bash "$stage/deepgemm/build-deepgemm.sh")"
  eval "$dg_env"
  python3 -c 'import deep_gemm' 2>&1 | tail -2
fi
echo "deepgemm ready after $(( $(date +%s) - t0 )) s" | tee -a "$OUT/machine.txt"

# The tpjit package exactly as a server environment gets it.
pylib="$(mktemp -d)"
if python3 -m pip install --no-deps --no-index --target "$pylib" \
    ./client/python >"$OUT/pip.log" 2>&1; then
  export PYTHONPATH="$pylib:${PYTHONPATH:-}"
else  # measure anyway, from the source tree; python.txt says so
  echo "pip install ./client/python FAILED (pip.log); using the source tree" |
    tee "$OUT/python.txt"
  export PYTHONPATH="$root/client/python:${PYTHONPATH:-}"
fi
python3 - <<'PY' | tee -a "$OUT/python.txt"
import sys, grpc, google.protobuf, tpjit, tpjit.deep_gemm
from tpjit.v1 import barrier_pb2, tpjit_pb2
print("python", sys.version.split()[0], "grpcio", grpc.__version__,
      "protobuf", google.protobuf.__version__, "tpjit from", tpjit.__file__)
PY

rc=0
python3 bench/deepgemm/bench_deepgemm.py --spec specs/deepseek-v3-tp8.json \
  --tpjitd "$stage/daemon/tpjitd" --tpjit "$stage/cli/tpjit" \
  --wrapper "$stage/bin/tpjit-nvcc" --out "$OUT" "$@" || rc=$?
tar czf "$OUT/logs.tar.gz" -C "$OUT" logs && rm -rf "$OUT/logs"
exit $rc
