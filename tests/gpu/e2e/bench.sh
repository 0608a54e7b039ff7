#!/usr/bin/env bash
# The warm-up benchmark alone, for both shipped specs.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH="$PWD/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export CUDA_CACHE_DISABLE=1 NCCL_NVLS_ENABLE=0
for s in deepseek-v3-tp8 qwen3-30b-a3b-tp4; do
  python3 run_bench.py --build . --spec specs/$s.json --ranks 8 --out "$OUT" 2>&1 | grep -v Deprecation | tail -22
done
