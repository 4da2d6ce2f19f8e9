# sdk_support.sh - sourced by run_conformance.sh and bench/run_bench.sh, which
# both run the official SDK against the emulator.
#
#   pinned_sdk_install SRC DIR   -> 0 ready, 77 no network (skip), 1 failed
#     installs the npm `e2b` SDK pinned by SRC/package.json + package-lock.json
#     (+ .npmrc) into DIR once (npm ci --prefer-offline; a stamp of the three
#     files marks a finished install), under a lock so that concurrent runs wait
#     for each other.
#
#   make_test_pki DIR CA_NAME    -> 0 ok (openssl's output in DIR/openssl.log)
#     a throwaway CA (DIR/ca.pem) and a certificate for 127.0.0.1 and localhost
#     signed by it (DIR/server.pem, DIR/server.key), valid for 2 days.
#
# Sets sdk_version (the pinned version) and sdk_dir (= DIR). Uses the caller's
# `log` function for its one progress line.

pinned_sdk_install() {
  local src=$1 rc stamp
  sdk_dir=$2
  sdk_version=$(node -p 'require(process.argv[1]).dependencies.e2b' "$src/package.json") || return 1
  stamp=$(cat "$src/package.json" "$src/package-lock.json" "$src/.npmrc" | sha256sum | cut -d' ' -f1)
  mkdir -p "$sdk_dir" || return 1
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$sdk_dir/.lock"
    if ! flock -w 600 9; then
      echo "timed out waiting for the install lock $sdk_dir/.lock" >&2
      exec 9>&-
      return 1
    fi
  fi
  pinned_sdk_install_locked "$src" "$stamp"
  rc=$?
  if command -v flock >/dev/null 2>&1; then flock -u 9; exec 9>&-; fi
  return $rc
}

pinned_sdk_install_locked() {
  local src=$1 stamp=$2 got
  got=$(node -p 'require(process.argv[1]).version' "$sdk_dir/node_modules/e2b/package.json" 2>/dev/null)
  if [ -f "$sdk_dir/.stamp" ] && [ "$(cat "$sdk_dir/.stamp")" = "$stamp" ] && [ "$got" = "$sdk_version" ]; then
    return 0
  fi
  log "installing e2b@$sdk_version into $sdk_dir"
  rm -rf "$sdk_dir/node_modules" "$sdk_dir/.stamp"
  cp "$src/package.json" "$src/package-lock.json" "$src/.npmrc" "$sdk_dir/" || return 1
  if ! (cd "$sdk_dir" && timeout 300 npm ci --prefer-offline --no-audit --no-fund --loglevel=warn) \
      >"$sdk_dir/npm-install.log" 2>&1; then
    cat "$sdk_dir/npm-install.log" >&2
    if grep -Eqi 'E(NOTFOUND|AI_AGAIN|CONNREFUSED|CONNRESET|TIMEDOUT|NETUNREACH|HOSTUNREACH)|network|offline|request to .* failed' \
        "$sdk_dir/npm-install.log"; then
      return 77
    fi
    return 1
  fi
  got=$(node -p 'require(process.argv[1]).version' "$sdk_dir/node_modules/e2b/package.json" 2>/dev/null)
  if [ "$got" != "$sdk_version" ]; then
    echo "npm installed e2b '$got', expected $sdk_version" >&2
    return 1
  fi
  echo "$stamp" >"$sdk_dir/.stamp"
}

make_test_pki() {
  local dir=$1 ca_name=$2
  (
    set -e
    cd "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout ca.key -out ca.pem -days 2 -subj "/CN=$ca_name" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout server.key -out server.csr -subj "/CN=localhost"
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
      "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -out server.pem -days 2 -extfile server.ext
  ) >"$dir/openssl.log" 2>&1
}
