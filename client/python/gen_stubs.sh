#!/usr/bin/env bash
# Regenerates the committed tpjit.v1 Python stubs (tpjit/v1/*_pb2*.py) from
# proto/ with Debian's protoc 3.21 and grpc_python_plugin 1.51. Code from this
# older protoc runs on newer protobuf/grpcio too (it carries no version check),
# which is why the stubs are generated here and committed rather than at
# install time. The build regenerates them into build/ and the
# python_stubs_test fails when the committed ones differ: run this then.
#   client/python/gen_stubs.sh [OUT_DIR]    (default: client/python)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
proto="$here/../../proto"
out="${1:-$here}"
plugin="${GRPC_PYTHON_PLUGIN:-$(command -v grpc_python_plugin)}"
mkdir -p "$out/tpjit/v1"
protoc -I "$proto" --python_out="$out" --grpc_python_out="$out" \
  --plugin=protoc-gen-grpc_python="$plugin" \
  tpjit/v1/spec.proto tpjit/v1/tpjit.proto tpjit/v1/barrier.proto \
  tpjit/v1/recipe.proto
[[ -e "$out/tpjit/v1/__init__.py" ]] || : >"$out/tpjit/v1/__init__.py"
