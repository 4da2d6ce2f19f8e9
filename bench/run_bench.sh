#!/usr/bin/env bash
# run_bench.sh - genesis-launch's E2B backend and the official E2B JS SDK side by
# side against genesis_e2b_emulator --bench, over HTTP and HTTPS; then the local
# benchmark when it is built. See docs/performance.md.
#
#   bench/run_bench.sh [--build-dir DIR] [--jobs N] [--rows C:L,...] [--transports http,tls]
#                      [--smoke] [--json-out FILE] [--cache-dir DIR] [--require-sdk]
#                      [--no-local] [--local-args "ARGS"] [--keep]
#                      [--emulator PATH] [--genesis-bench PATH] [--local-bench PATH]
#                      [--results-tmp DIR] [--disk-tmp DIR] [--paced-jobs N] [--repeat K]
#
# For each transport and each row (C in flight, L ms of latency per request;
# default rows 100:0,100:0:disk,100:50,1000:50,1000:50:disk,10:50:paced, N = 1000
# jobs) it starts ONE emulator (--bench, latency L), runs genesis_bench_e2b --url
# against it, then the SDK driver (bench/sdk/bench_sdk.mjs) against the same
# emulator, and stops it. Each client reports its own wall, CPU and peak RSS and the
# deltas of the emulator's stats around its run. Then genesis_bench_local --json, if
# built. At the end: every run, the targets' table (genesis-launch vs the SDK,
# ratios) and the local comparison; --json-out writes all of it as JSON.
#
# --repeat K (default 5, --smoke 1): each row runs both clients K times, one after
# the other, against the same emulator; the report gives each figure's median and
# its range (this machine is a shared VM whose speed drifts over minutes).
#
# Where the results folders go (job logs, metrics.json, correct.json per lifecycle,
# as the evaluation contract asks): a row C:L writes them under --results-tmp, by
# default /dev/shm when it is a writable folder (the SDK driver does the same file
# work there, so the comparison is of the clients alone); a row C:L:disk under
# --disk-tmp, by default /var/tmp (an ordinary disk on Debian): what users do. A row
# C:L:paced runs genesis-launch alone with the launcher's default create_rate (1
# sandbox per second), --paced-jobs jobs (default 10), results on the disk; every
# other row lifts create_rate (the emulator in bench mode has no rate limit).
#
# --smoke: N = 6, rows 3:0,3:5,6:5, no local benchmark (it proves the benchmark
# works; nothing is timed). Every job of both clients must succeed: a failed side
# makes the exit status 1.
#
# Exit codes: 0 ok, 1 a side failed, 2 usage, 77 skipped (node, npm or openssl
# missing, or the SDK could not be installed for lack of network). Skipping is a
# failure with --require-sdk, GENESIS_REQUIRE_CONFORMANCE=1 or CI=true.
#
# The pinned SDK (bench/sdk/package.json, package-lock.json) is installed once
# into DIR/e2b-bench, DIR = --cache-dir, else GENESIS_CONFORMANCE_CACHE_DIR, else
# ${XDG_CACHE_HOME:-~/.cache}/genesis-launch/npm.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
SKIP=77
py=/usr/bin/python3
[ -x "$py" ] || py=python3

build_dir=$root/build
jobs=
rows=
transports=http,tls
smoke=0
json_out=
cache_root=${GENESIS_CONFORMANCE_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/genesis-launch/npm}
require=${GENESIS_REQUIRE_CONFORMANCE:-$([ "${CI:-}" = true ] && echo 1 || echo 0)}
run_local=1
local_args="--rounds 5"
keep=0
emulator=
genesis_bench=
local_bench=
command_line="bench/run_bench.sh $*"

usage() {
  sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

while [ $# -gt 0 ]; do
  opt=$1
  shift
  case "$opt" in
    --build-dir|--jobs|--rows|--transports|--json-out|--cache-dir|--local-args|--emulator|--genesis-bench|--local-bench|--results-tmp|--disk-tmp|--paced-jobs|--repeat)
      [ $# -gt 0 ] || { echo "run_bench: $opt needs a value" >&2; exit 2; }
      val=$1
      shift
      ;;
    --*=*) val=${opt#*=}; opt=${opt%%=*} ;;
  esac
  case "$opt" in
    --build-dir) build_dir=$val ;;
    --jobs) jobs=$val ;;
    --rows) rows=$val ;;
    --transports) transports=$val ;;
    --json-out) json_out=$val ;;
    --cache-dir) cache_root=$val ;;
    --local-args) local_args=$val ;;
    --emulator) emulator=$val ;;
    --genesis-bench) genesis_bench=$val ;;
    --local-bench) local_bench=$val ;;
    --results-tmp) results_tmp=$val ;;
    --disk-tmp) disk_tmp=$val ;;
    --paced-jobs) paced_jobs=$val ;;
    --repeat) repeat=$val ;;
    --smoke) smoke=1 ;;
    --require-sdk) require=1 ;;
    --no-local) run_local=0 ;;
    --keep) keep=1 ;;
    -h|--help) usage ;;
    *) echo "run_bench: unknown option $opt" >&2; usage ;;
  esac
done

if [ "$smoke" = 1 ]; then
  repeat=${repeat:-1}
  jobs=${jobs:-6}
  rows=${rows:-3:0,3:5,6:5}
  run_local=0
else
  repeat=${repeat:-5}
  jobs=${jobs:-1000}
  rows=${rows:-100:0,100:0:disk,100:50,1000:50,1000:50:disk,10:50:paced}
fi
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "run_bench: --jobs must be a positive integer" >&2; exit 2; }
[[ "$repeat" =~ ^[1-9][0-9]*$ ]] || { echo "run_bench: --repeat must be a positive integer" >&2; exit 2; }
paced_jobs=${paced_jobs:-10}
[[ "$paced_jobs" =~ ^[1-9][0-9]*$ ]] || { echo "run_bench: --paced-jobs must be a positive integer" >&2; exit 2; }
IFS=, read -r -a row_list <<<"$rows"
for r in "${row_list[@]}"; do
  [[ "$r" =~ ^[1-9][0-9]*:[0-9]+(:disk|:paced)?$ ]] ||
    { echo "run_bench: bad row '$r' (want C:L, C:L:disk or C:L:paced, e.g. 100:50)" >&2; exit 2; }
done
IFS=, read -r -a transport_list <<<"$transports"
for t in "${transport_list[@]}"; do
  case "$t" in http|tls) ;; *) echo "run_bench: bad transport '$t' (http or tls)" >&2; exit 2 ;; esac
done

emulator=${emulator:-$build_dir/emulator/genesis_e2b_emulator}
genesis_bench=${genesis_bench:-$build_dir/bench/genesis_bench_e2b}
local_bench=${local_bench:-$build_dir/bench/genesis_bench_local}

log() { echo "[bench] $*"; }
fail() { echo "[bench] FAIL: $*" >&2; }
skip() {
  if [ "$require" = 1 ]; then
    echo "[bench] FAIL (required, not skipped): $*" >&2
    exit 1
  fi
  echo "[bench] SKIP: $*"
  exit "$SKIP"
}

# ---- prerequisites ----------------------------------------------------------

for p in "$emulator" "$genesis_bench"; do
  [ -x "$p" ] || { fail "'$p' is not built (cmake --build $build_dir --target genesis_bench_e2b)"; exit 1; }
done
command -v node >/dev/null 2>&1 || skip "node is not installed"
command -v npm >/dev/null 2>&1 || skip "npm is not installed"
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$node_major" -ge 20 ] 2>/dev/null || skip "node $(node --version 2>/dev/null) is older than 20"
case ",$transports," in
  *,tls,*) command -v openssl >/dev/null 2>&1 || skip "the openssl command is not installed (needed for TLS)" ;;
esac

# ---- the pinned SDK ---------------------------------------------------------

sdk_src=$here/sdk
# shellcheck source=/dev/null
. "$root/tests/conformance/sdk_support.sh"
pinned_sdk_install "$sdk_src" "$cache_root/e2b-bench"
rc=$?
case $rc in
  0) ;;
  "$SKIP") skip "could not install e2b@$sdk_version (no access to the npm registry?)" ;;
  *) fail "could not install e2b@$sdk_version"; exit 1 ;;
esac

# ---- temp folder, cleanup ---------------------------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/genesis-bench.XXXXXX") || { fail "mktemp"; exit 1; }
if [ -z "${results_tmp:-}" ]; then
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then results_tmp=/dev/shm; else results_tmp=${TMPDIR:-/tmp}; fi
fi
[ -d "$results_tmp" ] && [ -w "$results_tmp" ] || { echo "run_bench: --results-tmp $results_tmp is not a writable folder" >&2; exit 2; }
disk_tmp=${disk_tmp:-/var/tmp}
disk_run=
case ",$rows," in
  *:disk,*|*:paced,*)
    [ -d "$disk_tmp" ] && [ -w "$disk_tmp" ] || { echo "run_bench: --disk-tmp $disk_tmp is not a writable folder" >&2; exit 2; }
    # The clients leave their results folders here, removed only when the run ends: a
    # removal of thousands of files right before the next client's run would make that
    # run's file creations slower than anything a user sees (ext4 passes over recently
    # freed inodes when it allocates new ones), and charge one client for the other.
    disk_run=$(mktemp -d "$disk_tmp/genesis-bench-disk.XXXXXX") || { fail "mktemp in $disk_tmp"; exit 1; } ;;
esac
emu_pid=
status=0

stop_emulator() {
  [ -n "$emu_pid" ] || return 0
  if kill -0 "$emu_pid" 2>/dev/null; then
    kill -TERM "$emu_pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$emu_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$emu_pid" 2>/dev/null
  fi
  wait "$emu_pid" 2>/dev/null
  emu_pid=
}
cleanup() {
  stop_emulator
  [ -n "$disk_run" ] && rm -rf "$disk_run"
  if [ "$status" = 0 ] && [ "$keep" != 1 ]; then
    rm -rf "$tmp"
  else
    echo "[bench] logs kept in $tmp" >&2
  fi
}
trap cleanup EXIT
trap 'status=130; exit 130' INT
trap 'status=143; exit 143' TERM

# A throwaway CA and a server certificate for 127.0.0.1 (TLS runs).
case ",$transports," in
  *,tls,*)
    make_test_pki "$tmp" "genesis-launch bench test CA" || { cat "$tmp/openssl.log" >&2; status=1; fail "could not create the test certificates"; exit 1; }
    ;;
esac

# ---- the runs ---------------------------------------------------------------

results=$tmp/results.jsonl
: >"$results"
client_timeout=$([ "$smoke" = 1 ] && echo 60 || echo 900)
unset E2B_DOMAIN E2B_DEBUG E2B_ACCESS_TOKEN NODE_OPTIONS
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"

start_emulator() {  # transport latency run-name
  local transport=$1 latency=$2 name=$3 tls_args=()
  printf 'latency_ms: %s\n' "$latency" >"$tmp/$name.emulator.yaml"
  [ "$transport" = tls ] && tls_args=(--tls-cert "$tmp/server.pem" --tls-key "$tmp/server.key")
  : >"$tmp/$name.emulator.out"
  "$emulator" --bench --host 127.0.0.1 --port 0 --config "$tmp/$name.emulator.yaml" "${tls_args[@]}" \
    </dev/null >"$tmp/$name.emulator.out" 2>"$tmp/$name.emulator.err" &
  emu_pid=$!
  for _ in $(seq 300); do  # 30 s
    [ "$(wc -l <"$tmp/$name.emulator.out")" -ge 1 ] && break
    kill -0 "$emu_pid" 2>/dev/null || break
    sleep 0.05
  done
  if ! eval "$("$py" "$here/bench_report.py" ready "$tmp/$name.emulator.out")"; then
    cat "$tmp/$name.emulator.err" >&2
    fail "the emulator did not start ($emulator)"
    return 1
  fi
}

run_client() {  # name side out -- command...
  local name=$1 side=$2 out=$3 rc
  shift 4
  timeout --kill-after=10 "$client_timeout" "$@" >"$out" 2>"$tmp/$name.$side.err"
  rc=$?
  [ "$rc" = 124 ] && echo "timed out after $client_timeout s" >>"$tmp/$name.$side.err"
  if [ -s "$tmp/$name.$side.err" ]; then sed "s/^/[bench]   $side: /" "$tmp/$name.$side.err" | head -n 20 >&2; fi
  "$py" "$here/bench_report.py" record "$results" "$out" "$side" "$rc" "$tmp/$name.$side.err" \
    "$transport" "$row_jobs" "$c" "$l" "$mode" "$(stat -f -c %T "$TMPDIR" 2>/dev/null || echo '?')" || return 1
}

log "$(date -u '+%Y-%m-%d %H:%M:%S UTC'): N=$jobs, rows (C:L) $rows, transports $transports, $repeat repeats"
log "machine: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(nproc) cores"
log "clients: $genesis_bench; node $(node --version) with e2b@$sdk_version ($sdk_dir)"
log "results folders: rows C:L under $results_tmp ($(stat -f -c %T "$results_tmp" 2>/dev/null || echo '?')), rows C:L:disk and C:L:paced under $disk_tmp ($(stat -f -c %T "$disk_tmp" 2>/dev/null || echo '?'))"
for transport in "${transport_list[@]}"; do
  for row in "${row_list[@]}"; do
    IFS=: read -r c l mode <<<"$row"
    mode=${mode:-tmpfs}
    name=$transport-c$c-l$l-$mode
    row_jobs=$jobs
    pacing=()
    keep_files=()
    export TMPDIR=$results_tmp
    [ "$mode" = tmpfs ] || { export TMPDIR=$disk_run; keep_files=(--keep-files); }
    [ "$mode" = paced ] && row_jobs=$paced_jobs && pacing=(--create-rate 1)
    log "$transport C=$c L=$l ms, results on $mode: starting the emulator"
    start_emulator "$transport" "$l" "$name" || { status=1; stop_emulator; continue; }
    export E2B_API_KEY=$ready_api_key
    ca_args=()
    [ "$transport" = tls ] && ca_args=(--ca-file "$tmp/ca.pem")
    for rep in $(seq "$repeat"); do
      tag=""
      [ "$repeat" -gt 1 ] && tag=" [$rep/$repeat]"
      log "$transport C=$c L=$l ms, $mode: genesis-launch ($row_jobs jobs)$tag"
      unset NODE_EXTRA_CA_CERTS
      run_client "$name.$rep" genesis-launch "$tmp/$name.$rep.genesis-launch.json" -- \
        "$genesis_bench" --url "$ready_api_url" --jobs "$row_jobs" --in-flight "$c" --latency-ms "$l" --json \
        "${pacing[@]}" "${keep_files[@]}" "${ca_args[@]}" ||
        status=1
      [ "$mode" = paced ] && continue  # the SDK has no pacing of its own
      log "$transport C=$c L=$l ms, $mode: E2B JS SDK ($row_jobs jobs)$tag"
      if [ "$transport" = tls ]; then export NODE_EXTRA_CA_CERTS=$tmp/ca.pem; else unset NODE_EXTRA_CA_CERTS; fi
      run_client "$name.$rep" sdk "$tmp/$name.$rep.sdk.json" -- \
        node "$sdk_src/bench_sdk.mjs" --url "$ready_api_url" --sdk-dir "$sdk_dir" \
        --jobs "$row_jobs" --in-flight "$c" --latency-ms "$l" "${keep_files[@]}" ||
        status=1
    done
    unset NODE_EXTRA_CA_CERTS E2B_API_KEY
    stop_emulator
  done
done
export TMPDIR=${disk_run:-$disk_tmp}

local_json=$tmp/local.json
local_note=
if [ "$run_local" = 1 ]; then
  if [ -x "$local_bench" ]; then
    log "local: $local_bench --json $local_args (results and temp folders under $TMPDIR)"
    # shellcheck disable=SC2086  # --local-args is split on purpose
    if ! timeout --kill-after=10 900 "$local_bench" --json $local_args >"$local_json"; then
      local_note="genesis_bench_local failed"
      status=1
    fi
  else
    local_note="not run: $local_bench is not built"
  fi
else
  local_note="not run (--no-local or --smoke)"
fi
[ -s "$local_json" ] || rm -f "$local_json"

report_args=(report "$results" --command "$command_line" --jobs "$jobs" --sdk-version "$sdk_version" --repeat "$repeat")
[ -f "$local_json" ] && report_args+=(--local "$local_json")
[ -n "$local_note" ] && report_args+=(--local-note "$local_note")
[ -n "$json_out" ] && report_args+=(--json-out "$json_out")
"$py" "$here/bench_report.py" "${report_args[@]}" || status=1

if [ "$status" = 0 ]; then
  log "done: every job of both clients succeeded"
else
  fail "a benchmark side failed (see above)"
fi
exit "$status"
