#!/usr/bin/env bash
# Build llama.cpp's own llama-server from the llama.cpp sources inside the llama-cpp-python sdist that
# haniwa pins (the same llama.cpp commit haniwa runs on), for `bench/runtime.py --batching --anchor`.
#
#   bench/build_llama_server.sh [WORKDIR]      # WORKDIR defaults to /tmp; prints the binary's path
#
# Only PyPI is reached (pip download of the sdist). The web UI is neither built (npm) nor downloaded
# (LLAMA_USE_PREBUILT_UI would fetch it from a Hugging Face bucket): the server then serves the API only.
# HTTPS (LLAMA_OPENSSL) is off; the build is native (-march=native), as pip builds llama-cpp-python here.
# About 15 minutes on 2 busy cores.
set -euo pipefail

work=${1:-/tmp}
version=$(python -c "import importlib.metadata as m; print(m.version('llama-cpp-python'))")
sdist="$work/llama_cpp_python-$version"
build="$work/llama-build"

if [ ! -d "$sdist" ]; then
  pip download --no-deps --no-binary :all: "llama-cpp-python==$version" -d "$work"
  tar xzf "$work/llama_cpp_python-$version.tar.gz" -C "$work"
fi

cmake -S "$sdist/vendor/llama.cpp" -B "$build" \
  -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=ON \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_OPENSSL=OFF
nice -n 15 cmake --build "$build" --target llama-server -j "${JOBS:-2}"
echo "$build/bin/llama-server"
