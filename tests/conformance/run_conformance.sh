#!/usr/bin/env bash
# run_conformance.sh - runs the official E2B JS SDK (npm `e2b`, pinned in
# package.json) against genesis_e2b_emulator, over HTTP or HTTPS.
#
#   tests/conformance/run_conformance.sh [--tls] [--emulator PATH] [--cache-dir DIR]
#                                        [--concurrency N] [--keep] [TEST_FILE...]
#
# The emulator is PATH, else $GENESIS_E2B_EMULATOR. Steps:
#   1. install the pinned SDK into a cache folder (skipped when already there);
#   2. with --tls, make a throwaway CA and a server certificate for 127.0.0.1/localhost;
#   3. start the emulator, read its JSON ready line, export E2B_API_URL,
#      E2B_SANDBOX_URL, E2B_API_KEY (and NODE_EXTRA_CA_CERTS with --tls);
#   4. run the *.test.mjs files with `node --test`;
#   5. check that no sandbox is left live, stop the emulator with SIGTERM, check it
#      exits 0 and that none of its sandbox processes survive it.
#
# Exit codes: 0 pass, 1 fail, 2 usage, 77 skipped (node/npm/openssl missing, or
# the SDK could not be installed for lack of network).
#
# Environment: GENESIS_E2B_EMULATOR, GENESIS_CONFORMANCE_CACHE_DIR (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/genesis-launch/npm), E2B_CONFORMANCE_TIMEOUT
# (seconds for the node tests, default 600), GENESIS_REQUIRE_CONFORMANCE=1 (fail
# instead of skipping when node/npm/openssl or the SDK are missing; the default
# when CI=true), GENESIS_CONFORMANCE_KEEP=1 (keep the
# temp folder), GENESIS_CONFORMANCE_VERBOSE=1 (start the emulator with --verbose).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SKIP=77
started_at=$(date +%s)

tls=0
emulator=${GENESIS_E2B_EMULATOR:-}
cache_root=${GENESIS_CONFORMANCE_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/genesis-launch/npm}
concurrency=3
keep=${GENESIS_CONFORMANCE_KEEP:-0}
tests=()

usage() {
  sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    --tls) tls=1 ;;
    --emulator) shift; emulator=${1:-} ;;
    --emulator=*) emulator=${1#*=} ;;
    --cache-dir) shift; cache_root=${1:-} ;;
    --cache-dir=*) cache_root=${1#*=} ;;
    --concurrency) shift; concurrency=${1:-1} ;;
    --concurrency=*) concurrency=${1#*=} ;;
    --keep) keep=1 ;;
    -h|--help) usage ;;
    -*) echo "run_conformance: unknown option $1" >&2; usage ;;
    *)
      if [ -z "$emulator" ] && [ -x "$1" ] && [ ! -d "$1" ] && [[ "$1" != *.mjs ]]; then
        emulator=$1
      else
        tests+=("$1")
      fi
      ;;
  esac
  shift
done

mode=http
[ "$tls" = 1 ] && mode=https
log() { echo "[conformance/$mode] $*"; }
fail() { echo "[conformance/$mode] FAIL: $*" >&2; }
# In CI (CI=true) or with GENESIS_REQUIRE_CONFORMANCE=1 a missing prerequisite is
# a failure, not a skip: the suite must really have run.
require=${GENESIS_REQUIRE_CONFORMANCE:-$([ "${CI:-}" = true ] && echo 1 || echo 0)}
skip() {
  if [ "$require" = 1 ]; then
    echo "[conformance/$mode] FAIL (required, not skipped): $*" >&2
    exit 1
  fi
  echo "[conformance/$mode] SKIP: $*"
  exit "$SKIP"
}

# ---- prerequisites ----------------------------------------------------------

if [ -z "$emulator" ]; then
  echo "run_conformance: no emulator given (argument or GENESIS_E2B_EMULATOR)" >&2
  exit 2
fi
if [ ! -x "$emulator" ]; then
  fail "emulator '$emulator' is not an executable file"
  exit 1
fi
emulator=$(cd "$(dirname "$emulator")" && pwd)/$(basename "$emulator")

command -v node >/dev/null 2>&1 || skip "node is not installed"
command -v npm >/dev/null 2>&1 || skip "npm is not installed"
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$node_major" -ge 20 ] 2>/dev/null || skip "node $(node --version 2>/dev/null) is older than 20"
if [ "$tls" = 1 ]; then
  command -v openssl >/dev/null 2>&1 || skip "the openssl command is not installed (needed for --tls)"
fi

# Without explicit files: the *.test.mjs files run concurrently, then the
# *.serial.test.mjs ones (they change the emulator's global knobs) one at a time.
serial_tests=()
if [ ${#tests[@]} -eq 0 ]; then
  for f in "$here"/*.test.mjs; do
    case "$f" in
      *.serial.test.mjs) serial_tests+=("$f") ;;
      *) tests+=("$f") ;;
    esac
  done
fi

# ---- 1. the pinned SDK ------------------------------------------------------

# shellcheck source=/dev/null
. "$here/sdk_support.sh"
pinned_sdk_install "$here" "$cache_root/e2b-conformance"
rc=$?
case $rc in
  0) ;;
  "$SKIP") skip "could not install e2b@$sdk_version (no access to the npm registry?)" ;;
  *) fail "could not install e2b@$sdk_version"; exit 1 ;;
esac

# ---- temp folder, cleanup ---------------------------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/genesis-conformance-$mode.XXXXXX") || { fail "mktemp"; exit 1; }
state_dir=$tmp/state
mkdir -p "$state_dir"
emu_pid=
sampler_pid=
result=1

cleanup() {
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null
  if [ -n "$emu_pid" ] && kill -0 "$emu_pid" 2>/dev/null; then
    kill -TERM "$emu_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$emu_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$emu_pid" 2>/dev/null
  fi
  rm -rf "$state_dir" 2>/dev/null
  if [ "$result" = 0 ] && [ "$keep" != 1 ]; then
    rm -rf "$tmp"
  else
    echo "[conformance/$mode] logs kept in $tmp" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

emulator_tail() {
  echo "---- emulator stderr (last 80 lines of $tmp/emulator.err) ----" >&2
  tail -n 80 "$tmp/emulator.err" >&2 2>/dev/null
  echo "---- end of emulator stderr ----" >&2
}

# ---- 2. TLS material --------------------------------------------------------

tls_args=()
if [ "$tls" = 1 ]; then
  make_test_pki "$tmp" "genesis-launch conformance test CA" || { cat "$tmp/openssl.log" >&2; fail "could not create the test certificates"; exit 1; }
  tls_args=(--tls-cert "$tmp/server.pem" --tls-key "$tmp/server.key")
fi

# ---- 3. start the emulator --------------------------------------------------

verbose_args=()
[ "${GENESIS_CONFORMANCE_VERBOSE:-0}" = 1 ] && verbose_args=(--verbose)
log "starting $emulator"
"$emulator" --host 127.0.0.1 --port 0 --state-dir "$state_dir" "${tls_args[@]}" "${verbose_args[@]}" \
  </dev/null >"$tmp/emulator.out" 2>"$tmp/emulator.err" &
emu_pid=$!

ready=0
for _ in $(seq 300); do  # 30 s
  if [ "$(wc -l <"$tmp/emulator.out")" -ge 1 ]; then ready=1; break; fi
  kill -0 "$emu_pid" 2>/dev/null || break
  sleep 0.1
done
if [ "$ready" != 1 ]; then
  if kill -0 "$emu_pid" 2>/dev/null; then
    fail "the emulator printed no ready line within 30 s"
  else
    wait "$emu_pid"; fail "the emulator exited with status $? before it was ready"; emu_pid=
  fi
  emulator_tail
  exit 1
fi

if ! eval "$(node "$here/emulator_admin.mjs" parse-ready "$tmp/emulator.out")"; then
  emulator_tail
  exit 1
fi
log "ready: api_url=$ready_api_url sandbox_url=$ready_sandbox_url port=$ready_port pid=$ready_pid tls=$ready_tls"
if [ "$ready_pid" != "$emu_pid" ]; then
  fail "the ready line says pid $ready_pid, the emulator is pid $emu_pid"
  exit 1
fi
scheme=http
[ "$tls" = 1 ] && scheme=https
case "$ready_api_url|$ready_sandbox_url" in
  "$scheme://"*"|$scheme://"*) ;;
  *) fail "expected $scheme:// URLs in the ready line"; exit 1 ;;
esac
if [ "$ready_tls" != "$tls" ]; then
  fail "the ready line says tls=$ready_tls"
  exit 1
fi

export E2B_API_URL=$ready_api_url
export E2B_SANDBOX_URL=$ready_sandbox_url
export E2B_API_KEY=$ready_api_key
export E2B_CONFORMANCE_NODE_MODULES=$sdk_dir
export E2B_CONFORMANCE_RUN_TAG="conf-$mode-$$"
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
unset E2B_DOMAIN E2B_DEBUG E2B_ACCESS_TOKEN NODE_OPTIONS
if [ "$tls" = 1 ]; then
  # Without the CA the certificate must be refused (so TLS is real and verified).
  if NODE_EXTRA_CA_CERTS= node -e 'fetch(process.argv[1]).then(() => process.exit(0), () => process.exit(3))' \
      "$E2B_API_URL/health" 2>/dev/null; then
    fail "an HTTPS request without the test CA was accepted: the emulator does not serve the given certificate"
    exit 1
  fi
  export NODE_EXTRA_CA_CERTS=$tmp/ca.pem
else
  unset NODE_EXTRA_CA_CERTS
fi

# Every process that is ever a descendant of the emulator ("pid starttime"), to
# check after it exits that none survived.
descendants() {
  local root=$1 stat pid ppid rest start
  declare -A parent=() started=()
  for stat in /proc/[0-9]*/stat; do
    read -r rest 2>/dev/null <"$stat" || continue
    pid=${rest%% *}
    rest=${rest##*) }          # fields after "pid (comm) "
    read -r _ ppid _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ start _ <<<"$rest"
    parent[$pid]=$ppid
    started[$pid]=$start
  done
  local changed=1
  declare -A inside=([$root]=1)
  while [ "$changed" = 1 ]; do
    changed=0
    for pid in "${!parent[@]}"; do
      if [ -z "${inside[$pid]:-}" ] && [ -n "${inside[${parent[$pid]}]:-}" ]; then
        inside[$pid]=1
        changed=1
      fi
    done
  done
  for pid in "${!inside[@]}"; do
    [ "$pid" = "$root" ] && continue
    echo "$pid ${started[$pid]:-?} $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | cut -c1-4000)"
  done
}
(
  while kill -0 "$emu_pid" 2>/dev/null; do
    descendants "$emu_pid" >>"$tmp/descendants.txt"
    sleep 0.5
  done
) &
sampler_pid=$!

# ---- 4. the SDK tests -------------------------------------------------------

status=0
test_started=$(date +%s)
test_deadline=$(( test_started + ${E2B_CONFORMANCE_TIMEOUT:-600} ))
run_node_tests() {  # CONCURRENCY FILE...
  local conc=$1 left rc
  shift
  left=$(( test_deadline - $(date +%s) ))
  [ "$left" -gt 0 ] || left=1
  log "running $# test file(s) (concurrency $conc) with e2b@$sdk_version, node $(node --version)"
  timeout --kill-after=10 "$left" node --test --test-reporter=spec --test-concurrency="$conc" "$@"
  rc=$?
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    fail "the node tests did not finish within ${E2B_CONFORMANCE_TIMEOUT:-600} s"
  fi
  [ "$rc" = 0 ] || { fail "node --test exited with $rc"; status=1; }
}
[ ${#tests[@]} -gt 0 ] && run_node_tests "$concurrency" "${tests[@]}"
[ ${#serial_tests[@]} -gt 0 ] && run_node_tests 1 "${serial_tests[@]}"
test_seconds=$(( $(date +%s) - test_started ))

# ---- 5. nothing leaked, clean shutdown --------------------------------------

if kill -0 "$emu_pid" 2>/dev/null; then
  node "$here/emulator_admin.mjs" check-clean || status=1
else
  fail "the emulator died during the tests"
  status=1
fi

descendants "$emu_pid" >>"$tmp/descendants.txt"
kill "$sampler_pid" 2>/dev/null
wait "$sampler_pid" 2>/dev/null
sampler_pid=

if kill -0 "$emu_pid" 2>/dev/null; then
  kill -TERM "$emu_pid"
  exited=0
  for _ in $(seq 200); do  # 20 s
    kill -0 "$emu_pid" 2>/dev/null || { exited=1; break; }
    sleep 0.1
  done
  if [ "$exited" = 1 ]; then
    wait "$emu_pid"
    emu_rc=$?
    if [ "$emu_rc" != 0 ]; then
      fail "the emulator exited with status $emu_rc after SIGTERM (expected 0)"
      status=1
    fi
  else
    fail "the emulator did not exit within 20 s of SIGTERM"
    kill -KILL "$emu_pid" 2>/dev/null
    wait "$emu_pid" 2>/dev/null
    status=1
  fi
fi
emu_pid=

# Survivors: former descendants still alive with the same start time, and any
# process whose command line mentions the state folder (bwrap's bind mounts).
# Processes the kernel is still tearing down get a short grace period. Zombies
# do not count: they hold nothing, and orphaned ones (bubblewrap's inner process
# when the outer one dies first) wait for PID 1 to reap them, which some
# container inits do lazily.
survivors_now() {
  local pid start cmd now_state now_start rest
  if [ -f "$tmp/descendants.txt" ]; then
    while read -r pid start cmd; do
      rest=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
      rest=${rest##*) }
      read -r now_state _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ now_start _ <<<"$rest"
      [ "$now_state" = Z ] && continue
      [ "$now_start" = "$start" ] && echo "$pid"
    done < <(sort -u -k1,2 "$tmp/descendants.txt")
  fi
  for pid in $(pgrep -f -- "$state_dir" 2>/dev/null); do
    [ "$pid" = "$$" ] && continue
    rest=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    rest=${rest##*) }
    [ "${rest%% *}" = Z ] || echo "$pid"
  done
}
shorten() {  # long bwrap command lines: the start and the command at the end
  if [ ${#1} -le 200 ]; then echo "$1"; else echo "${1:0:60} … ${1: -130}"; fi
}
survivors=()
first_survivors=()
for i in $(seq 30); do  # 3 s
  mapfile -t survivors < <(survivors_now | sort -un)
  [ "$i" = 1 ] && first_survivors=("${survivors[@]}")
  [ ${#survivors[@]} -eq 0 ] && break
  sleep 0.1
done
if [ ${#survivors[@]} -eq 0 ] && [ ${#first_survivors[@]} -gt 0 ]; then
  log "note: ${#first_survivors[@]} sandbox process(es) were still exiting when the emulator had exited:"
  for pid in "${first_survivors[@]}"; do
    seen=$(grep -m1 "^$pid " "$tmp/descendants.txt" 2>/dev/null | cut -d' ' -f3-)
    echo "  pid $pid: $(shorten "$seen")"
  done
fi
if [ ${#survivors[@]} -gt 0 ]; then
  fail "sandbox processes outlived the emulator by more than 3 s:"
  for pid in "${survivors[@]}"; do
    seen=$(grep -m1 "^$pid " "$tmp/descendants.txt" 2>/dev/null | cut -d' ' -f3-)
    echo "  pid $pid: now '$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-300)', seen as '$(shorten "$seen")'" >&2
  done
  kill -KILL "${survivors[@]}" 2>/dev/null
  status=1
fi

total=$(( $(date +%s) - started_at ))
if [ "$status" = 0 ]; then
  result=0
  log "PASS (tests ${test_seconds}s, total ${total}s)"
else
  emulator_tail
  log "FAILED (tests ${test_seconds}s, total ${total}s)"
fi
exit "$status"
