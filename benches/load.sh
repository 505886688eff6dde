#!/usr/bin/env bash
# The README's performance table: a release-build provider on its own (users and clients
# seeded by the demo), each flow of the load tool (src/bin/load.rs) in turn, 32 concurrent
# clients, the provider's CPU and memory read from /proc.
#
#   benches/load.sh            # SQLite (the default store), sessions in SQLite
#   benches/load.sh postgres   # PostgreSQL + Redis (GATEHOUSE_TEST_POSTGRES_URL's server)
#
# DURATION (default 10s) and CONCURRENCY (default 32) change the runs; FLOWS (default: every
# flow, then refresh and sso again with ES256) runs only the flows named, with RS256.
set -euo pipefail
cd "$(dirname "$0")/.."

backend="${1:-sqlite}"
duration="${DURATION:-10s}"
concurrency="${CONCURRENCY:-32}"
flows="${FLOWS:-discovery jwks userinfo client-credentials refresh sso login}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
# One build for every binary: separate `-p` builds would unify features differently and
# rebuild much of the graph.
cargo build --release --locked --workspace --bins
bin="$CARGO_TARGET_DIR/release"
dir=$(mktemp -d /tmp/gatehouse-load.XXXXXX)

export RUST_LOG=warn
export PROVIDER_ISSUER=http://idp.localhost:4000 PROVIDER_LISTEN=127.0.0.1:4000
export PROVIDER_COOKIE__ALLOW_INSECURE_HTTP=true
# All the load comes from one address and a handful of clients: the rate limits that protect
# a deployment from one noisy client would only measure themselves here.
export PROVIDER_LIMITS__RATE_PER_ADDRESS=0 PROVIDER_LIMITS__TOKEN_RATE_PER_CLIENT=0
export PROVIDER_LIMITS__INTROSPECTION_RATE_PER_CLIENT=0 PROVIDER_LIMITS__NEW_SESSIONS_PER_ADDRESS=0
# Every virtual client signs the same account in at once, which the sign-in throttle rightly
# counts as a burst of guesses.
export PROVIDER_LIMITS__SIGN_IN_THROTTLE=false
case "$backend" in
  sqlite)
    export PROVIDER_DATABASE_URL="sqlite://$dir/provider.db?mode=rwc"
    ;;
  postgres)
    admin="${GATEHOUSE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
    db="gatehouse_load_$$"
    psql "$admin" -qc "CREATE DATABASE $db"
    trap 'psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
    export PROVIDER_DATABASE_URL="${admin%/*}/$db"
    export PROVIDER_SESSION__STORE=redis
    export PROVIDER_SESSION__REDIS_URL="${GATEHOUSE_TEST_REDIS_URL:-redis://127.0.0.1:6379/}"
    export PROVIDER_SESSION__REDIS_PREFIX="gatehouse-load-$$:"
    ;;
  *) echo "usage: $0 [sqlite|postgres]" >&2; exit 2 ;;
esac

ready() { curl -fs http://127.0.0.1:4000/readyz >/dev/null; }
wait_ready() {
  for _ in $(seq 1 100); do ready && return 0; sleep 0.2; done
  echo "the provider did not start; see $dir" >&2; exit 1
}

# Seed with the demo (users alice and bob, App A, App B, demo-service), then stop it once it
# says it is running (seeded).
"$bin/gatehouse" --data-dir "$dir" >"$dir/demo.log" 2>&1 &
demo=$!
for _ in $(seq 1 150); do grep -q "demo is running" "$dir/demo.log" && break; sleep 0.2; done
grep -q "demo is running" "$dir/demo.log" || { echo "the demo did not start; see $dir" >&2; exit 1; }
kill -TERM "$demo"; wait "$demo" || true

rows="$dir/rows.md"
run() { # run FLOW LABEL: one flow against the running provider, its table row kept
  "$bin/load" "$1" --concurrency "$concurrency" --duration "$duration" --pid "$pid" --row "$2" \
    | tee /dev/stderr | grep '^| ' >>"$rows"
}
start() {
  "$bin/provider" serve >"$dir/provider.log" 2>&1 &
  pid=$!
  wait_ready
}
stop() { kill -TERM "$pid"; wait "$pid" || true; }

rss() { awk '/VmRSS/ { printf "%d MiB", $2 / 1024 }' "/proc/$pid/status"; }
# Idle: 30 s with a request a second (as health checks would make). mimalloc hands freed
# memory back to the system a second or more after the fact, on a later allocation.
idle() {
  for _ in $(seq 1 30); do
    curl -fs http://127.0.0.1:4000/.well-known/openid-configuration >/dev/null; sleep 1
  done
  rss
}
start
idle_start=$(rss)
# Warm-up: a few seconds of every flow at low concurrency, then idle.
for flow in discovery jwks userinfo client-credentials refresh sso login; do
  "$bin/load" "$flow" --concurrency 4 --duration 2s --warmup 1s >/dev/null
done
idle_warm=$(idle)
for flow in $flows; do
  echo >&2; echo "== $flow (App A's ID tokens: RS256)" >&2
  label="\`$flow\`"
  case "$flow" in refresh|sso) label="$label (RS256)" ;; esac
  run "$flow" "$label"
done
idle_end=$(idle)
stop

# Refresh and single sign-on again with ES256 ID tokens.
if [ -z "${FLOWS:-}" ]; then
  "$bin/provider" clients update app-a --id-token-alg ES256 >/dev/null
  start
  for flow in refresh sso; do
    echo >&2; echo "== $flow (App A's ID tokens: ES256)" >&2
    run "$flow" "\`$flow\` (ES256)"
  done
  stop
fi

echo
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $backend;" \
  "$concurrency clients, $duration per flow; provider RSS $idle_start at start, $idle_warm idle" \
  "after warm-up, $idle_end idle after the runs"
echo
echo "| flow | flows/s | p50 | p99 | provider CPU per flow | load tool CPU per flow | provider peak RSS | errors |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
cat "$rows"
echo
echo "logs and data: $dir"
