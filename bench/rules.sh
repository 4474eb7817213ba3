#!/usr/bin/env bash
# License throughput with the device and stream rules on, against the same requests with them off, in one run on one
# server: on the embedded SQLite default, or on PostgreSQL with DATABASE=postgres (a fresh database on
# 127.0.0.1:5432, user postgres).
#
#   bench/rules.sh                     # SQLite; DURATION=10s ROUNDS=3 CONNECTIONS=32 THREADS=1 USERS=200
#   DATABASE=postgres bench/rules.sh   # PostgreSQL
#
# Every user has two tokens: one whose policy sets max_devices 3, max_concurrent_streams 2 and a renewal interval, so
# each request with it (and the user's device and session headers) counts its device and holds or renews its stream
# slot in the database; and a plain one, for the same requests with no rule to apply. Needs wrk, jq, xxd (and psql for PostgreSQL).
# These machines are noisy: compare the ratio, not the absolute numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
USERS=${USERS:-200}
ROUNDS=${ROUNDS:-3}
DATABASE=${DATABASE:-sqlite}

cargo build --release --locked -q
BIN=$PWD/target/release/clavis
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
export CLAVIS_LOG_LEVEL=warn
DB_NAME=""
if [ "$DATABASE" = postgres ]; then
  DB_NAME=clavis_bench_$$
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $DB_NAME"
  export CLAVIS_DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB_NAME
  export CLAVIS_MASTER_KEY=$(head -c 32 /dev/urandom | base64)
  "$BIN" migrate >/dev/null
fi
( cd "$WORK" && CLAVIS_LISTEN=127.0.0.1:$PORT exec "$BIN" serve >/dev/null 2>"$WORK/serve.log" ) &
SERVER=$!
cleanup() {
  kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true
  [ -n "$DB_NAME" ] && psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB_NAME" || true
  [ -n "${KEEP_LOG:-}" ] && cp "$WORK/serve.log" "$KEEP_LOG"
  rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.1; done

API_KEY=$(cd "$WORK" && "$BIN" tenant create --name Bench --email bench@example.com 2>/dev/null | jq -r .api_key)
auth=(-H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json')
curl -sf -X PATCH "$BASE/api/v1/tenant/settings" "${auth[@]}" -d '{"token_ttl_seconds": 86400}' >/dev/null
KID=$(curl -sf -X POST "$BASE/api/v1/keys" "${auth[@]}" -d '{"content_id":"bench"}' | jq -r '.keys[0].kid')
KID_B64=$(echo "$KID" | xxd -r -p | base64 | tr '+/' '-_' | tr -d '=')
export CLAVIS_BENCH_BODY="{\"kids\":[\"$KID_B64\"],\"type\":\"temporary\"}"
POLICY='{"max_devices": 3, "max_concurrent_streams": 2, "renewal_interval_seconds": 600}'
export CLAVIS_BENCH_REQUESTS=$WORK/requests.txt
for u in $(seq 1 "$USERS"); do
  plain=$(curl -sf -X POST "$BASE/api/v1/tokens" "${auth[@]}" \
    -d "{\"user_id\":\"user-$u\",\"content_id\":\"bench\"}" | jq -r .token)
  ruled=$(curl -sf -X POST "$BASE/api/v1/tokens" "${auth[@]}" \
    -d "{\"user_id\":\"user-$u\",\"content_id\":\"bench\",\"policy\":$POLICY}" | jq -r .token)
  echo "$plain $ruled device-$u session-$u" >>"$CLAVIS_BENCH_REQUESTS"
done
# Both kinds of request must be issued, or the benchmark would measure refusals.
read -r plain ruled device session < "$CLAVIS_BENCH_REQUESTS"
curl -sf -X POST "$BASE/license/clearkey" -H "X-Clavis-Token: $plain" -d "$CLAVIS_BENCH_BODY" | jq -e '.keys[0].k' >/dev/null
curl -sf -X POST "$BASE/license/clearkey" -H "X-Clavis-Token: $ruled" -H "X-Clavis-Device: $device" \
  -H "X-Clavis-Session: $session" -d "$CLAVIS_BENCH_BODY" | jq -e '.keys[0].k' >/dev/null

run() { wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/rules.lua "$BASE/license/clearkey"; }
summary() { # requests/s, p50, p99, non-2xx from wrk output
  awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {bad=$NF} END {printf "%s %s %s %s\n", rps, p50, p99, (bad==""?0:bad)}'
}
CLAVIS_BENCH_RULES=0 run >/dev/null   # warm-up
: >"$WORK/off.txt"; : >"$WORK/on.txt"
for _ in $(seq 1 "$ROUNDS"); do
  CLAVIS_BENCH_RULES=0 run | summary >>"$WORK/off.txt"
  CLAVIS_BENCH_RULES=1 run | summary >>"$WORK/on.txt"
done
python3 - "$WORK/off.txt" "$WORK/on.txt" "$DATABASE" <<'PY'
import statistics, sys
def load(path): return [line.split() for line in open(path) if line.strip()]
off, on, db = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3]
def med(rows, i): return statistics.median(float(r[i]) for r in rows)
def med_lat(rows, i):
    def us(v): return float(v[:-2]) * 1000 if v.endswith("ms") else float(v[:-2]) if v.endswith("us") else float(v[:-1]) * 1e6
    return statistics.median(us(r[i]) for r in rows)
print(f"database: {db}")
print("requests            median req/s   p50 (us)   p99 (us)   non-2xx   per-round req/s")
for name, rows in (("rules off", off), ("devices + streams", on)):
    print(f"{name:<19} {med(rows,0):>12.0f} {med_lat(rows,1):>10.0f} {med_lat(rows,2):>10.0f} {sum(int(r[3]) for r in rows):>9}   {' '.join(r[0] for r in rows)}")
ratios = [float(b[0]) / float(a[0]) for a, b in zip(off, on)]
print(f"ratio rules on/off: median {statistics.median(ratios):.2f} (rounds: {' '.join(f'{r:.2f}' for r in ratios)})")
PY
DENIED=$(curl -sf "$BASE/api/v1/license-log?limit=1000&outcome=denied" "${auth[@]}" | jq length)
CODES=$(curl -sf "$BASE/api/v1/license-log?limit=1000&outcome=denied" "${auth[@]}" | jq -c "[.[] | [.error_code, .rule, .detail]] | unique")
echo "denied codes: $CODES"
STREAMS=$(curl -sf "$BASE/api/v1/users/user-1/streams" "${auth[@]}" | jq length)
echo "denied rows in the license log: $DENIED (must be 0); user-1 holds $STREAMS stream slot(s) (must be 1)"
