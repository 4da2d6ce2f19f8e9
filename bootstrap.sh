#!/usr/bin/env bash
# Sets up a Debian 12 machine, builds genesis-launch, and then either runs the
# bundled example or the test suite.
#
#   ./bootstrap.sh example   # install deps, build, evaluate examples/circle_packing locally
#   ./bootstrap.sh test      # install deps, build, run every test
#
# Environment: BUILD_DIR (default: build), BUILD_TYPE (default: RelWithDebInfo),
# JOBS (default: number of cores).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
build_dir=${BUILD_DIR:-build}
build_type=${BUILD_TYPE:-RelWithDebInfo}
jobs=${JOBS:-$(nproc)}

# Debian 12 packages the build, the example and the tests need.
packages=(
  cmake ninja-build g++ git
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-filesystem1.81-dev
  libyaml-cpp-dev libssl-dev libcli11-dev libgtest-dev libgmock-dev
  python3 python3-numpy
  bubblewrap openssl ca-certificates
)
# The E2B conformance tests run the official JS SDK: Node.js and npm, unless
# the machine already has them (any recent Node.js will do).
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

install_missing() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "==> installing Debian packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}

build() {
  echo "==> configuring ($build_type) in $build_dir"
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" >/dev/null
  echo "==> building with $jobs jobs"
  cmake --build "$build_dir" -j "$jobs"
}

case "${1:-}" in
  example)
    install_missing
    build
    echo "==> evaluating the bundled circle-packing example"
    exec "$build_dir/cli/genesis_launch" variant=circle_packing_example cluster=local
    ;;
  test)
    install_missing
    build
    echo "==> running the tests"
    exec ctest --test-dir "$build_dir" --output-on-failure -j "$jobs"
    ;;
  *)
    echo "usage: $0 example|test" >&2
    exit 2
    ;;
esac
