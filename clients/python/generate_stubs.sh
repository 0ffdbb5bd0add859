#!/usr/bin/env bash
# Generates the Python stubs for phi3.v1 into OUT_DIR (default: ./gen), with
# protoc and Debian's grpc_python_plugin (apt: protobuf-compiler-grpc,
# python3-grpcio, python3-protobuf). The CMake build does the same into
# build/clients/python.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/gen}
mkdir -p "$out"
protoc --proto_path="$here/../../proto" --python_out="$out" --grpc_python_out="$out" \
  --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \
  "$here/../../proto/phi3/v1/phi3.proto"
echo "stubs in $out (add it to PYTHONPATH)"
