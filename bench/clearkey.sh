#!/usr/bin/env bash
# ClearKey license throughput against the trivial /healthz, in one run on one server (embedded SQLite default).
#
#   bench/clearkey.sh            # DURATION=10s ROUNDS=3 CONNECTIONS=32 THREADS=1 by default
#
# Needs wrk (Debian package `wrk`), jq and xxd. Builds the release binary, starts `clavis serve` in a temporary
# directory, creates a tenant, a content key and a long-lived token, then runs wrk on both endpoints and prints
# requests/s, p50/p99 latency and the ratio license/healthz. These machines are noisy: compare the ratio, not the
# absolute numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}

cargo build --release --locked -q
BIN=$PWD/target/release/clavis
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
( cd "$WORK" && CLAVIS_LISTEN=127.0.0.1:$PORT CLAVIS_LOG_LEVEL=warn exec "$BIN" serve >/dev/null 2>"$WORK/serve.log" ) &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.1; done

API_KEY=$(cd "$WORK" && CLAVIS_LOG_LEVEL=warn "$BIN" tenant create --name Bench --email bench@example.com 2>/dev/null | jq -r .api_key)
auth=(-H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json')
curl -sf -X PATCH "$BASE/api/v1/tenant/settings" "${auth[@]}" -d '{"token_ttl_seconds": 86400}' >/dev/null
KID=$(curl -sf -X POST "$BASE/api/v1/keys" "${auth[@]}" -d '{"content_id":"bench"}' | jq -r '.keys[0].kid')
export CLAVIS_BENCH_TOKEN=$(curl -sf -X POST "$BASE/api/v1/tokens" "${auth[@]}" -d '{"user_id":"u","content_id":"bench"}' | jq -r .token)
KID_B64=$(echo "$KID" | xxd -r -p | base64 | tr '+/' '-_' | tr -d '=')
export CLAVIS_BENCH_BODY="{\"kids\":[\"$KID_B64\"],\"type\":\"temporary\"}"
# The license must actually be issued, or the benchmark would measure refusals.
curl -sf -X POST "$BASE/license/clearkey" -H "X-Clavis-Token: $CLAVIS_BENCH_TOKEN" -d "$CLAVIS_BENCH_BODY" | jq -e '.keys[0].k' >/dev/null

run() { wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@"; }
summary() { # requests/s, p50, p99, non-2xx from wrk output
  awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {bad=$NF} END {printf "%s %s %s %s\n", rps, p50, p99, (bad==""?0:bad)}'
}
run "$BASE/healthz" >/dev/null   # warm-up
# Alternate the two endpoints ROUNDS times and report the medians, so a noisy moment hits both alike.
ROUNDS=${ROUNDS:-3}
: >"$WORK/healthz.txt"; : >"$WORK/license.txt"
for _ in $(seq 1 "$ROUNDS"); do
  run "$BASE/healthz" | summary >>"$WORK/healthz.txt"
  run -s bench/clearkey.lua "$BASE/license/clearkey" | summary >>"$WORK/license.txt"
done
python3 - "$WORK/healthz.txt" "$WORK/license.txt" <<'PY'
import statistics, sys
def load(path):
    rows = [line.split() for line in open(path) if line.strip()]
    return rows
health, license = load(sys.argv[1]), load(sys.argv[2])
def med(rows, i): return statistics.median(float(r[i]) for r in rows)
def med_lat(rows, i):
    def us(v): return float(v[:-2]) * 1000 if v.endswith("ms") else float(v[:-2]) if v.endswith("us") else float(v[:-1]) * 1e6
    return statistics.median(us(r[i]) for r in rows)
print("endpoint          median req/s   p50 (us)   p99 (us)   non-2xx   per-round req/s")
for name, rows in (("GET /healthz", health), ("POST clearkey", license)):
    print(f"{name:<17} {med(rows,0):>12.0f} {med_lat(rows,1):>10.0f} {med_lat(rows,2):>10.0f} {sum(int(r[3]) for r in rows):>9}   {' '.join(r[0] for r in rows)}")
ratios = [float(l[0]) / float(h[0]) for h, l in zip(health, license)]
print(f"ratio license/healthz: median {statistics.median(ratios):.2f} (rounds: {' '.join(f'{r:.2f}' for r in ratios)}; goal >= 0.5)")
PY
DENIED=$(curl -sf "$BASE/api/v1/license-log?limit=1&outcome=denied" "${auth[@]}" | jq length)
echo "denied rows in the license log: $DENIED (must be 0)"
