#!/bin/bash
# Generic batch bench: builds generic_batch_bench, runs it for N distinct
# minitl kernels and writes bench/results/generic-batch.md.
#   bench/generic/run.sh [N] [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-16}
build=${2:-$root/build-generic}
cmake -S "$root" -B "$build" >/dev/null
cmake --build "$build" --target generic_batch_bench -j"$(nproc)" >/dev/null
load=$(cut -d" " -f1-3 /proc/loadavg)
row=$("$build/bench/generic/generic_batch_bench" "$n")
nvcc_version=$(/usr/local/cuda/bin/nvcc --version | grep release)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
out=$root/bench/results/generic-batch.md
cat >"$out" <<MD
# Generic compile batch: nvcc one after another vs one tpjitd Compile batch

N distinct instantiations of \`minitl::Accumulate<float, U, B>\`
(tests/generic/testlib: includes \`<utility>\`, \`<type_traits>\`, needs
\`--expt-relaxed-constexpr\`), \`-cubin -arch=sm_90a\`, NVCC back end.

- *sequential*: \`nvcc -cubin\` for each source, one after another, in one process.
- *daemon cold*: one \`Compile\` batch to a fresh tpjitd (empty cache, default
  slots/procs: 1 slot without GPUs, procs = cores): keys by \`nvcc -E\` (up to 4 in
  parallel), then the compiles sharded over the workers.
- *daemon warm*: the same batch again (every source a cache hit; the time is the
  key computation, i.e. \`nvcc -E\` per source).

Machine: $(nproc) cores ($cpu), no GPU; $nvcc_version. Date: $(date -u +%F).
Load average when it started (a shared machine): $load.
Reproduce: \`bench/generic/run.sh $n\`.

| N | cores | sequential nvcc (s) | daemon cold (s) | speed-up | daemon warm (s) |
| --- | --- | --- | --- | --- | --- |
$row
MD
cat "$out"
