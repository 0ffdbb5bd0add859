"""Build steps of phi3serve-client that pyproject.toml cannot state.

- The gRPC stubs (phi3/v1/*_pb2.py, *_pb2.pyi, *_pb2_grpc.py) are generated
  into the build from the API's .proto files, found in PHI3_PROTO_DIR or the
  checkout's proto/ folder. protoc needs the proto3 `optional` keyword
  (protobuf >= 3.15): Debian 12's protoc + grpc_python_plugin
  (protobuf-compiler, protobuf-compiler-grpc) are used when on PATH, else
  grpc_tools.protoc (pip's grpcio-tools; Debian's python3-grpc-tools bundles a
  protoc too old for the API).
- The version is the project's, read from the top CMakeLists.txt.
"""
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKOUT = os.path.normpath(os.path.join(HERE, "..", ".."))


def project_version() -> str:
    with open(os.path.join(CHECKOUT, "CMakeLists.txt"), encoding="utf-8") as f:
        match = re.search(r"project\(phi3serve VERSION ([0-9.]+)", f.read())
    if not match:
        sys.exit("phi3serve-client: no `project(phi3serve VERSION x.y.z` in CMakeLists.txt")
    return match.group(1)


def protoc_command() -> list:
    protoc, plugin = shutil.which("protoc"), shutil.which("grpc_python_plugin")
    if protoc and plugin:
        return [protoc, f"--plugin=protoc-gen-grpc_python={plugin}"]
    if importlib.util.find_spec("grpc_tools") is None:
        sys.exit("phi3serve-client: generating the stubs needs protoc and grpc_python_plugin "
                 "(Debian: protobuf-compiler protobuf-compiler-grpc) or pip's grpcio-tools")
    return [sys.executable, "-m", "grpc_tools.protoc"]


class BuildPyWithStubs(build_py):
    """build_py, then protoc for every proto/phi3/v1/*.proto into the build."""

    def run(self):
        super().run()
        root = os.environ.get("PHI3_PROTO_DIR") or os.path.join(CHECKOUT, "proto")
        protos = sorted(glob.glob(os.path.join(root, "phi3", "v1", "*.proto")))
        if not protos:
            sys.exit(f"phi3serve-client: no phi3/v1/*.proto under {root} (set PHI3_PROTO_DIR)")
        out = self.build_lib
        os.makedirs(out, exist_ok=True)
        subprocess.run(protoc_command() + [f"--proto_path={root}", f"--python_out={out}",
                                           f"--pyi_out={out}", f"--grpc_python_out={out}",
                                           *protos], check=True)


setup(version=project_version(), cmdclass={"build_py": BuildPyWithStubs})
