#!/usr/bin/env bash
# Sets up a Debian 12 machine, builds genesis-launch, and then either runs the
# bundled example or the test suite.
#
#   ./bootstrap.sh example   # install deps, build, evaluate examples/circle_packing locally
#   ./bootstrap.sh test      # install deps, build, run every test, then again under
#                            # ASan+UBSan (Clang 14) with bounded libFuzzer runs, then
#                            # under ThreadSanitizer (the C++ suites)
#
# More (docs/testing.md): `test-normal` (the normal build's tests only),
# `test-asan` (the ASan+UBSan+fuzz build's tests only), `test-tsan` (ThreadSanitizer).
# `bench [OPTIONS]` (docs/performance.md): builds the benchmarks (Release, in
# BENCH_BUILD_DIR) and runs bench/run_bench.sh with OPTIONS (default: the full run).
#
# Environment: BUILD_DIR (default: build), BUILD_TYPE (default: RelWithDebInfo),
# ASAN_BUILD_DIR (default: build-asan), TSAN_BUILD_DIR (default: build-tsan),
# BENCH_BUILD_DIR (default: build-bench),
# FUZZ_SECONDS (default: 15, per fuzz target), JOBS (default: number of cores).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
build_dir=${BUILD_DIR:-build}
build_type=${BUILD_TYPE:-RelWithDebInfo}
asan_build_dir=${ASAN_BUILD_DIR:-build-asan}
tsan_build_dir=${TSAN_BUILD_DIR:-build-tsan}
bench_build_dir=${BENCH_BUILD_DIR:-build-bench}
fuzz_seconds=${FUZZ_SECONDS:-15}
jobs=${JOBS:-$(nproc)}

# Debian 12 packages the build, the example and the tests need.
packages=(
  cmake ninja-build g++ git
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-filesystem1.81-dev
  libyaml-cpp-dev libssl-dev libcli11-dev libgtest-dev libgmock-dev
  python3 python3-numpy
  # The tests' stand-ins for Genesis's and ShinkaEvolve's eval_hydra.py load the saved
  # .hydra/config.yaml with OmegaConf, as the engines do.
  python3-omegaconf
  # The Python package (python/): pybind11 and Python's headers to build it, pytest to test it.
  pybind11-dev python3-dev python3-pytest python3-setuptools
  bubblewrap openssl ca-certificates
  # Sanitizer and fuzz builds: Clang 14 with its ASan/UBSan/TSan/libFuzzer
  # runtimes, and llvm-symbolizer for readable stack traces.
  clang-14 libclang-rt-14-dev llvm-14
)
# The E2B conformance tests and the benchmark run the official JS SDK: Node.js and npm, unless
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

build_targets() {  # dir [targets...] (default: everything)
  local dir=$1
  shift
  if [ $# -gt 0 ]; then
    echo "==> building $* with $jobs jobs"
    cmake --build "$dir" -j "$jobs" --target "$@"
  else
    echo "==> building with $jobs jobs"
    cmake --build "$dir" -j "$jobs"
  fi
}

# RelWithDebInfo with GCC's -g1 (functions and line tables, for backtraces) instead of
# -g: the build takes about a quarter less time, and nobody steps through this build
# in a debugger (configure your own with -g, or BUILD_TYPE=Debug, for that).
build() {  # [targets...] (default: everything)
  echo "==> configuring ($build_type) in $build_dir"
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" >/dev/null || return
  build_targets "$build_dir" "$@"
}

# Sanitizer builds use Clang 14 against libstdc++, at -O1 with line tables (fast
# enough to run the suite, with file:line stack traces). They leave the benchmarks out.
sanitizer_build() {  # dir sanitizers [targets...] (default: everything)
  local dir=$1 sanitizers=$2 extra=()
  shift 2
  if [ "$sanitizers" = "address,undefined" ]; then
    extra=(-DGENESIS_LAUNCH_FUZZ=ON -DGENESIS_LAUNCH_FUZZ_SECONDS="$fuzz_seconds")
  fi
  echo "==> configuring the $sanitizers build in $dir"
  # A folder configured earlier with another compiler starts afresh.
  if [ -f "$dir/CMakeCache.txt" ] && ! grep -q '^CMAKE_CXX_COMPILER:FILEPATH=.*clang++-14$' "$dir/CMakeCache.txt"; then
    echo "==> $dir was configured with another compiler: configuring it afresh"
    rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
  fi
  cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" -DGENESIS_LAUNCH_SANITIZE="$sanitizers" -DGENESIS_LAUNCH_BUILD_BENCH=OFF \
    "${extra[@]}" >/dev/null || return
  build_targets "$dir" "$@"
}

if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && command -v llvm-symbolizer-14 >/dev/null 2>&1; then
  export ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer-14)
fi

# (The test functions run under `||`, where `set -e` does not apply: hence `|| return`.)

# The suite of a build folder: every test but the load tests, in parallel; then the
# load tests (label `load`: the soak and the 500-job run, sized for the build by
# tests/CMakeLists.txt), one at a time. Both run even when the first fails.
run_suite() {  # dir [labels to leave out, as a regex]
  local dir=$1 skip=load rc=0
  [ -n "${2:-}" ] && skip="load|$2"
  echo "==> running the tests"
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" -LE "$skip" || rc=1
  echo "==> running the load tests"
  ctest --test-dir "$dir" --output-on-failure -L load || rc=1
  return $rc
}

test_normal() {
  build || return
  run_suite "$build_dir"
}

test_asan() {
  sanitizer_build "$asan_build_dir" address,undefined || return
  echo "==> under ASan+UBSan, fuzzing each target for ${fuzz_seconds}s"
  run_suite "$asan_build_dir"
}

# ThreadSanitizer: the library's own tests (unit, integration, emulator, the load
# tests sized down); the conformance, Python and fuzz-replay tests add nothing there.
tsan_targets=(unit_tests integration_tests emulator_tests genesis_launch genesis_e2b_emulator)
test_tsan() {
  sanitizer_build "$tsan_build_dir" thread "${tsan_targets[@]}" || return
  echo "==> under ThreadSanitizer"
  run_suite "$tsan_build_dir" 'conformance|python|fuzz'
}

# The benchmarks: a Release build of their targets only (no tests), then the
# side-by-side run; its JSON goes to $bench_build_dir/bench-results.json.
bench() {  # run_bench.sh options...
  echo "==> configuring Release in $bench_build_dir (benchmarks only)"
  cmake -S . -B "$bench_build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGENESIS_LAUNCH_BUILD_TESTS=OFF \
    -DGENESIS_LAUNCH_BUILD_CLI=OFF -DGENESIS_LAUNCH_BUILD_EMULATOR=ON -DGENESIS_LAUNCH_BUILD_BENCH=ON >/dev/null || return
  local targets=(genesis_e2b_emulator genesis_bench_e2b)
  cmake --build "$bench_build_dir" --target help | grep '^genesis_bench_local:' >/dev/null && targets+=(genesis_bench_local)
  echo "==> building ${targets[*]} with $jobs jobs"
  cmake --build "$bench_build_dir" -j "$jobs" --target "${targets[@]}" || return
  echo "==> running bench/run_bench.sh (progress lines as it goes; a full run takes about 15 minutes)"
  bench/run_bench.sh --build-dir "$bench_build_dir" --require-sdk \
    --json-out "$bench_build_dir/bench-results.json" "$@"
}

timed() {  # label command...
  local label=$1 start=$SECONDS rc=0
  shift
  "$@" || rc=$?
  echo "==> $label: $((SECONDS - start)) s, $([ $rc -eq 0 ] && echo passed || echo "FAILED ($rc)")"
  return $rc
}

case "${1:-}" in
  example)
    install_missing
    build genesis_launch  # the CLI only: the tests are the other command's
    echo "==> evaluating the bundled circle-packing example"
    exec "$build_dir/cli/genesis_launch" variant=circle_packing_example cluster=local
    ;;
  test)
    install_missing
    # Both parts run even when the first fails, so one run reports everything.
    rc=0
    timed "normal build and tests" test_normal || rc=1
    timed "ASan+UBSan build, tests and fuzzing" test_asan || rc=1
    timed "TSan build and tests" test_tsan || rc=1
    exit $rc
    ;;
  test-normal) install_missing; timed "normal build and tests" test_normal ;;
  test-asan) install_missing; timed "ASan+UBSan build, tests and fuzzing" test_asan ;;
  test-tsan) install_missing; timed "TSan build and tests" test_tsan ;;
  bench) shift; install_missing; timed "benchmark build and run" bench "$@" ;;
  *)
    echo "usage: $0 example|test|test-normal|test-asan|test-tsan|bench [run_bench.sh options]" >&2
    exit 2
    ;;
esac
