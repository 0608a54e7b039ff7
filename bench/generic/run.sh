#!/bin/bash
# Generic batch bench: builds generic_batch_bench, runs it for N distinct
# minitl kernels and REPS interleaved repetitions, and records the raw runs
# with the machine in bench/results/generic-batch/NAME.json (its stderr in
# NAME.log; $GENERIC_OUT names another folder); bench/generic/table.py then
# renders the README there. TPJIT_NO_BUILD=1 runs BUILD_DIR's binary as it
# is (a staged copy: scripts/gpu-e2e, with TPJITD and TPJIT_MINITL_DIR set).
#   bench/generic/run.sh [N] [REPS] [NAME] [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-16}
reps=${2:-5}
name=${3:-$(nproc)core-n$n}
build=${4:-$root/build}
nvcc=${NVCC:-/usr/local/cuda/bin/nvcc}
out=${GENERIC_OUT:-$root/bench/results/generic-batch}
mkdir -p "$out"
if [[ -z "${TPJIT_NO_BUILD:-}" ]]; then
  cmake -S "$root" -B "$build" >/dev/null
  cmake --build "$build" --target generic_batch_bench -j"$(nproc)" >/dev/null
fi
export N=$n REPS=$reps NAME=$name LOAD_START="$(cat /proc/loadavg)"
export NVCC_VERSION=$("$nvcc" --version | grep release)
export DATE=$(date -u '+%F %H:%M UTC') COMMAND="${GENERIC_COMMAND:-bench/generic/run.sh $*}"
"$build/bench/generic/generic_batch_bench" "$n" "$reps" "$nvcc" \
  2>"$out/$name.log" | tee "$out/$name.jsonl"
export LOAD_END="$(cat /proc/loadavg)"
python3 - "$out/$name.jsonl" "$out/$name.json" <<'PY'
import json, os, sys
cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
           if l.startswith("model name"))
e = os.environ
r = {"name": e["NAME"], "n": int(e["N"]), "reps": int(e["REPS"]), "cores": os.cpu_count(),
     "cpu": cpu, "nvcc": e["NVCC_VERSION"], "date": e["DATE"], "command": e["COMMAND"],
     "loadavg_start": e["LOAD_START"], "loadavg_end": e["LOAD_END"],
     "runs": [json.loads(l) for l in open(sys.argv[1]) if l.strip()]}
json.dump(r, open(sys.argv[2], "w"), indent=1)
PY
rm "$out/$name.jsonl"
python3 "$(dirname "$0")/table.py" "$out"
