#!/usr/bin/env bash
# Compares the provider at BASE_REV with the working tree on this machine, in one run: both
# are built (release, separate target directories), each seeded by its own demo, and the load
# tool of the working tree (src/bin/load.rs) drives them in turn, alternating base and head
# for every flow, concurrency and round, so that both see the same machine in the same minute.
# Ratios (head / base) are what to read: these machines drift by ±15 % between runs, two
# providers measured a minute apart do not.
#
#   benches/compare.sh 84d3969            # SQLite (sessions in SQLite)
#   benches/compare.sh 84d3969 postgres   # PostgreSQL + Redis (GATEHOUSE_TEST_POSTGRES_URL's server)
#
# FLOWS (default: userinfo client-credentials refresh sso login), CONCURRENCY (default "8 32"),
# ROUNDS (default 2; the median is reported) and DURATION (default 8s) change the runs;
# LOAD_ARGS is passed on to the load tool (for example the first-party App B:
# LOAD_ARGS="--client-id app-b --client-secret app-b-secret
# --redirect-uri http://app-b.localhost:5002/callback").
# Columns: flows/s; provider CPU per flow (user + kernel, from /proc/PID/stat); machine CPU per
# flow (every process, the load tool and the database servers included, from /proc/stat);
# p50 and p99 latency; the kernel's share of the provider's CPU; the provider's peak RSS. Each
# cell is "base → head (head/base)".
set -euo pipefail
cd "$(dirname "$0")/.."

base_rev="${1:?usage: $0 BASE_REV [sqlite|postgres]}"
backend="${2:-sqlite}"
flows="${FLOWS:-userinfo client-credentials refresh sso login}"
concurrencies="${CONCURRENCY:-8 32}"
rounds="${ROUNDS:-2}"
duration="${DURATION:-8s}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
work=$(mktemp -d /tmp/gatehouse-compare.XXXXXX)
base_sha=$(git rev-parse --short "$base_rev^{commit}")

echo "== building $base_sha (base) and the working tree (head), release" >&2
mkdir -p "$work/base-src"
git archive "$base_sha" | tar -x -C "$work/base-src"
(cd "$work/base-src" && CARGO_TARGET_DIR="$target/compare-base" \
  cargo build --release --locked --workspace --bins)
CARGO_TARGET_DIR="$target" cargo build --release --locked --workspace --bins
declare -A bin=([base]="$target/compare-base/release" [head]="$target/release")
load="$target/release/load"

export RUST_LOG=warn
export PROVIDER_ISSUER=http://idp.localhost:4000 PROVIDER_LISTEN=127.0.0.1:4000
export PROVIDER_COOKIE__ALLOW_INSECURE_HTTP=true
# One address and a handful of clients: the limits that protect a deployment from one noisy
# client (and the sign-in throttle, which rightly sees a burst of guesses) would only measure
# themselves. Settings a side does not know are unset for it (figment refuses unknown keys).
limits="RATE_PER_ADDRESS TOKEN_RATE_PER_CLIENT INTROSPECTION_RATE_PER_CLIENT NEW_SESSIONS_PER_ADDRESS"
side_env() { # side_env SIDE: the environment for that side's provider and demo
  local side=$1 src
  src=$([ "$side" = base ] && echo "$work/base-src" || echo "$PWD")
  for l in $limits; do
    if grep -rqi "$l" "$src/provider/src/config.rs"; then
      export "PROVIDER_LIMITS__$l=0"
    else
      unset "PROVIDER_LIMITS__$l"
    fi
  done
  if grep -q "sign_in_throttle" "$src/provider/src/config.rs"; then
    export PROVIDER_LIMITS__SIGN_IN_THROTTLE=false
  else
    unset PROVIDER_LIMITS__SIGN_IN_THROTTLE
  fi
  case "$backend" in
    sqlite) export PROVIDER_DATABASE_URL="sqlite://$work/$side/provider.db?mode=rwc" ;;
    postgres)
      export PROVIDER_DATABASE_URL="${admin%/*}/gatehouse_compare_${side}_$$"
      export PROVIDER_SESSION__STORE=redis
      export PROVIDER_SESSION__REDIS_URL="${GATEHOUSE_TEST_REDIS_URL:-redis://127.0.0.1:6379/}"
      export PROVIDER_SESSION__REDIS_PREFIX="gatehouse-compare-$side-$$:"
      ;;
  esac
}

case "$backend" in
  sqlite) ;;
  postgres)
    admin="${GATEHOUSE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
    for side in base head; do psql "$admin" -qc "CREATE DATABASE gatehouse_compare_${side}_$$"; done
    trap 'for s in base head; do psql "$admin" -qc "DROP DATABASE IF EXISTS gatehouse_compare_${s}_$$ WITH (FORCE)"; done' EXIT
    ;;
  *) echo "usage: $0 BASE_REV [sqlite|postgres]" >&2; exit 2 ;;
esac

ready() { curl -fs http://127.0.0.1:4000/.well-known/openid-configuration >/dev/null; }
# Seed each side with its own demo (users alice and bob, App A, App B, demo-service).
for side in base head; do
  mkdir -p "$work/$side"
  (
    side_env "$side"
    "${bin[$side]}/gatehouse" --data-dir "$work/$side" >"$work/$side/demo.log" 2>&1 &
    demo=$!
    for _ in $(seq 1 300); do grep -q "demo is running" "$work/$side/demo.log" && break; sleep 0.2; done
    grep -q "demo is running" "$work/$side/demo.log" || { echo "the $side demo did not start; see $work" >&2; exit 1; }
    kill -TERM "$demo"; wait "$demo" || true
  )
done

results="$work/results.jsonl"
measure() { # measure SIDE FLOW CONCURRENCY: one provider start, one load run, one JSON line
  local side=$1 flow=$2 conc=$3 pid line
  (
    side_env "$side"
    "${bin[$side]}/provider" serve >>"$work/$side/provider.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 150); do ready && break; sleep 0.2; done
    ready || { echo "the $side provider did not start; see $work" >&2; exit 1; }
    # shellcheck disable=SC2086 # LOAD_ARGS is a list of words
    line=$("$load" "$flow" --concurrency "$conc" --duration "$duration" --warmup 2s \
      --pid "$pid" --json ${LOAD_ARGS:-} | tail -n 1)
    kill -TERM "$pid"; wait "$pid" || true
    echo "{\"side\":\"$side\",\"flow\":\"$flow\",\"concurrency\":$conc,\"run\":$line}" >>"$results"
  )
}

for round in $(seq 1 "$rounds"); do
  for flow in $flows; do
    for conc in $concurrencies; do
      # Alternate which side goes first, round by round.
      if [ $((round % 2)) = 1 ]; then order="base head"; else order="head base"; fi
      for side in $order; do
        echo "== round $round: $flow, $conc clients, $side" >&2
        measure "$side" "$flow" "$conc"
      done
    done
  done
done

python3 - "$results" "$base_sha" "$backend" <<'PY'
import json, statistics, sys
path, base, backend = sys.argv[1:4]
runs = [json.loads(l) for l in open(path)]
machine = runs[0]["run"]["machine"] if runs else ""
keys = []
for r in runs:
    k = (r["flow"], r["concurrency"])
    if k not in keys:
        keys.append(k)
def med(side, k, field):
    vals = [r["run"].get(field) for r in runs if r["side"] == side and (r["flow"], r["concurrency"]) == k]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None
def cell(k, field, fmt):
    b, h = med("base", k, field), med("head", k, field)
    if b is None or h is None:
        return "n/a"
    ratio = f" ({h / b:.2f}×)" if b else ""
    return f"{fmt(b)} → {fmt(h)}{ratio}"
ms = lambda v: f"{v:.3f}"
lat = lambda v: f"{v:.1f}"
print(f"\n{machine}; {backend}; base {base}, head the working tree; median of the rounds\n")
print("| flow | clients | flows/s | provider CPU/flow (ms) | machine CPU/flow (ms) | p50 (ms) | p99 (ms) | kernel share | peak RSS (MiB) | errors |")
print("| --- | ---: | --- | --- | --- | --- | --- | --- | --- | --- |")
for k in keys:
    errors = sum(r["run"].get("errors", 0) for r in runs if (r["flow"], r["concurrency"]) == k)
    print(f"| `{k[0]}` | {k[1]} | {cell(k, 'flows_per_second', lambda v: f'{v:.0f}')} "
          f"| {cell(k, 'cpu_ms_per_flow', ms)} | {cell(k, 'machine_cpu_ms_per_flow', ms)} "
          f"| {cell(k, 'p50_ms', lat)} | {cell(k, 'p99_ms', lat)} "
          f"| {cell(k, 'provider_kernel_share', lambda v: f'{v * 100:.0f}%')} "
          f"| {cell(k, 'rss_peak_mib', lambda v: f'{v:.0f}')} | {errors} |")
PY
echo
echo "runs and logs: $work"
