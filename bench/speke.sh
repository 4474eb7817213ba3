#!/usr/bin/env bash
# SPEKE v2 answers per second for a 5-track request (SD, HD, UHD1, UHD2, AUDIO; Widevine, PlayReady and FairPlay
# signalling for each) against the trivial /healthz, in one run on one server (embedded SQLite default).
#
#   bench/speke.sh            # DURATION=10s ROUNDS=3 CONNECTIONS=32 THREADS=1 PROFILE=release by default
#
# Needs wrk, jq and curl. The first request makes the five keys; every later one reads them from the key cache and
# builds the PSSH boxes, PlayReady headers and HLS lines anew, which is what a packager's repeated calls cost.
# These machines are noisy: compare the ratio, not the absolute numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
PROFILE=${PROFILE:-release}

if [ "$PROFILE" = release ]; then cargo build --release --locked -q; else cargo build --locked -q; fi
BIN=${CARGO_TARGET_DIR:-$PWD/target}/$([ "$PROFILE" = release ] && echo release || echo debug)/clavis
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
( cd "$WORK" && CLAVIS_LISTEN=127.0.0.1:$PORT CLAVIS_LOG_LEVEL=warn exec "$BIN" serve >/dev/null 2>"$WORK/serve.log" ) &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.1; done

export CLAVIS_BENCH_API_KEY=$(cd "$WORK" && CLAVIS_LOG_LEVEL=warn "$BIN" tenant create --name Bench --email bench@example.com 2>/dev/null | jq -r .api_key)
export CLAVIS_BENCH_SPEKE_FILE=$WORK/speke.xml
{
  echo '<?xml version="1.0" encoding="UTF-8"?>'
  echo '<cpix:CPIX contentId="bench-live" version="2.3" xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc">'
  echo '<cpix:ContentKeyList>'
  for n in 1 2 3 4 5; do echo "<cpix:ContentKey kid=\"5e6a0382-0f15-4cf7-a8d5-6af1e8a9650$n\" commonEncryptionScheme=\"cbcs\"/>"; done
  echo '</cpix:ContentKeyList><cpix:DRMSystemList>'
  for n in 1 2 3 4 5; do
    kid="5e6a0382-0f15-4cf7-a8d5-6af1e8a9650$n"
    echo "<cpix:DRMSystem kid=\"$kid\" systemId=\"edef8ba9-79d6-4ace-a3c8-27dcd51d21ed\"><cpix:PSSH/><cpix:ContentProtectionData/><cpix:HLSSignalingData playlist=\"media\"/><cpix:HLSSignalingData playlist=\"master\"/></cpix:DRMSystem>"
    echo "<cpix:DRMSystem kid=\"$kid\" systemId=\"9a04f079-9840-4286-ab92-e65be0885f95\"><cpix:PSSH/><cpix:ContentProtectionData/><cpix:HLSSignalingData playlist=\"media\"/><cpix:HLSSignalingData playlist=\"master\"/></cpix:DRMSystem>"
    echo "<cpix:DRMSystem kid=\"$kid\" systemId=\"94ce86fb-07ff-4f43-adb8-93d2fa968ca2\"><cpix:HLSSignalingData playlist=\"media\"/><cpix:HLSSignalingData playlist=\"master\"/></cpix:DRMSystem>"
  done
  echo '</cpix:DRMSystemList><cpix:ContentKeyUsageRuleList>'
  n=0
  for track in SD HD UHD1 UHD2 AUDIO; do
    n=$((n+1)); echo "<cpix:ContentKeyUsageRule kid=\"5e6a0382-0f15-4cf7-a8d5-6af1e8a9650$n\" intendedTrackType=\"$track\"/>"
  done
  echo '</cpix:ContentKeyUsageRuleList></cpix:CPIX>'
} >"$CLAVIS_BENCH_SPEKE_FILE"
# The answer must carry five keys, or the benchmark would measure refusals.
KEYS=$(curl -sf -X POST "$BASE/speke/v2.0/copyProtection" -H "Authorization: Bearer $CLAVIS_BENCH_API_KEY" \
  -H 'X-Speke-Version: 2.0' --data-binary @"$CLAVIS_BENCH_SPEKE_FILE" | grep -o '<pskc:PlainValue>' | wc -l)
[ "$KEYS" = 5 ] || { echo "SPEKE answer has $KEYS keys, expected 5" >&2; exit 1; }

run() { wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@"; }
summary() { # requests/s, p50, p99, non-2xx from wrk output
  awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {bad=$NF} END {printf "%s %s %s %s\n", rps, p50, p99, (bad==""?0:bad)}'
}
run "$BASE/healthz" >/dev/null   # warm-up
ROUNDS=${ROUNDS:-3}
: >"$WORK/healthz.txt"; : >"$WORK/speke.txt"
for _ in $(seq 1 "$ROUNDS"); do
  run "$BASE/healthz" | summary >>"$WORK/healthz.txt"
  run -s bench/speke.lua "$BASE/speke/v2.0/copyProtection" | summary >>"$WORK/speke.txt"
done
python3 - "$WORK/healthz.txt" "$WORK/speke.txt" "$PROFILE" <<'PY'
import statistics, sys
def load(path):
    return [line.split() for line in open(path) if line.strip()]
health, speke = load(sys.argv[1]), load(sys.argv[2])
def med(rows, i): return statistics.median(float(r[i]) for r in rows)
def med_lat(rows, i):
    def us(v): return float(v[:-2]) * 1000 if v.endswith("ms") else float(v[:-2]) if v.endswith("us") else float(v[:-1]) * 1e6
    return statistics.median(us(r[i]) for r in rows)
print(f"build: {sys.argv[3]}")
print("endpoint          median req/s   p50 (us)   p99 (us)   non-2xx   per-round req/s")
for name, rows in (("GET /healthz", health), ("POST speke v2", speke)):
    print(f"{name:<17} {med(rows,0):>12.0f} {med_lat(rows,1):>10.0f} {med_lat(rows,2):>10.0f} {sum(int(r[3]) for r in rows):>9}   {' '.join(r[0] for r in rows)}")
ratios = [float(s[0]) / float(h[0]) for h, s in zip(health, speke)]
print(f"ratio speke/healthz: median {statistics.median(ratios):.3f} (rounds: {' '.join(f'{r:.3f}' for r in ratios)})")
PY
