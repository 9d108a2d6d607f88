#!/usr/bin/env bash
# Trigger delivery benchmark on SQLite: deliveries/s and the time from an event being due to its
# handler starting (p50/p99), with a trivial handler, 1 and 8 handlers at once. Next to it, as
# the baseline from the same run: durable one-row writes/s (the ceiling of a store that commits
# every change). Results: bench/results/triggers-<date>.{csv,md}.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
swift build -c release --product picloud >/dev/null
EVENTS=${EVENTS:-20000}
date=$(date -u +%F)
out=bench/results/triggers-$date
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

start_server() { # concurrency
  local log=$work/server-$1.log
  PICLOUD_DISPATCHER_CONCURRENCY=$1 PICLOUD_ADMIN_TOKEN=pc_bench-token-0123456789abcdef \
    .build/release/picloud serve --port 0 --data-dir "$work/data-$1" --deploy bench/triggers/app --log-level notice 2>"$log" &
  server=$!
  for _ in $(seq 100); do
    port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    [ -n "$port" ] && return 0
    sleep 0.1
  done
  echo "server did not start"; cat "$log"; exit 1
}

metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v name="$1" '$1 == name {print $2}'; }

run_case() { # concurrency -> "deliveries_per_s p50_ms p99_ms writes_per_s"
  start_server "$1"
  local base="http://127.0.0.1:$port/apps/tbench/api"
  local t0 t1 t2
  t0=$(date +%s.%N)
  curl -sf -X POST "$base/write/$EVENTS" >/dev/null
  t1=$(date +%s.%N)
  curl -sf -X POST "$base/publish/$EVENTS" >/dev/null &
  publisher=$!
  local start=$(date +%s.%N)
  while :; do
    delivered=$(metric picloud_trigger_deliveries_total); delivered=${delivered:-0}
    [ "${delivered%.*}" -ge "$EVENTS" ] && break
    sleep 0.02
  done
  t2=$(date +%s.%N)
  wait $publisher
  curl -s "http://127.0.0.1:$port/metrics" > "$work/metrics-$1.txt"
  kill $server; wait $server 2>/dev/null || true
  python3 - "$work/metrics-$1.txt" "$EVENTS" "$t0" "$t1" "$start" "$t2" <<'PY'
import sys
text, events, t0, t1, start, t2 = open(sys.argv[1]).read(), int(sys.argv[2]), *map(float, sys.argv[3:])
buckets = []
for line in text.splitlines():
    if line.startswith("picloud_trigger_start_latency_seconds_bucket"):
        le = line.split('le="')[1].split('"')[0]
        buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
total = buckets[-1][1]
def quantile(q):
    for le, count in buckets:
        if count >= q * total: return le * 1000
print(f"{events / (t2 - start):.0f} {quantile(0.5):g} {quantile(0.99):g} {events / (t1 - t0):.0f}")
PY
}

{
  echo "# Trigger delivery benchmark ($date)"
  echo
  echo "\`bench/triggers/run.sh\`: $EVENTS events published one transaction each by a handler, delivered to a handler that does nothing; release build, SQLite (synchronous=full), $(nproc) cores. Latency = event due → handler start, from the dispatcher's histogram (the value is the upper bound of the bucket that holds the quantile). Baseline: the same handler doing $EVENTS durable kv.set calls."
  echo
  echo "| handlers at once | deliveries/s | start latency p50 (ms, ≤) | p99 (ms, ≤) | baseline writes/s | ratio |"
  echo "|---|---|---|---|---|---|"
} > "$out.md"
echo "concurrency,deliveries_per_s,p50_ms_le,p99_ms_le,baseline_writes_per_s,ratio" > "$out.csv"
for concurrency in 1 8; do
  read -r rate p50 p99 writes <<<"$(run_case $concurrency)"
  ratio=$(python3 -c "print(f'{$rate/$writes:.2f}')")
  echo "$concurrency,$rate,$p50,$p99,$writes,$ratio" >> "$out.csv"
  echo "| $concurrency | $rate | $p50 | $p99 | $writes | $ratio |" >> "$out.md"
done

# The same latency when events arrive at a steady 500/s (one publish per request), not as a burst.
start_server 8
python3 - "$port" <<'PY'
import http.client, sys, time
connection = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
start = time.monotonic()
for i in range(2000):
    connection.request("POST", "/apps/tbench/api/publish/1")
    connection.getresponse().read()
    delay = start + (i + 1) / 500 - time.monotonic()
    if delay > 0: time.sleep(delay)
PY
sleep 1
curl -s "http://127.0.0.1:$port/metrics" > "$work/metrics-steady.txt"
kill $server; wait $server 2>/dev/null || true
read -r p50 p99 <<<"$(python3 - "$work/metrics-steady.txt" <<'PY'
import sys
buckets = []
for line in open(sys.argv[1]).read().splitlines():
    if line.startswith("picloud_trigger_start_latency_seconds_bucket"):
        le = line.split('le="')[1].split('"')[0]
        buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
total = buckets[-1][1]
def quantile(q):
    for le, count in buckets:
        if count >= q * total: return le * 1000
print(f"{quantile(0.5):g} {quantile(0.99):g}")
PY
)"
echo "steady-500-per-s,,$p50,$p99,," >> "$out.csv"
{
  echo
  echo "At a steady 500 events/s (one publish per HTTP request, 8 handlers at once): start latency p50 ≤ $p50 ms, p99 ≤ $p99 ms."
} >> "$out.md"
cat "$out.md"
echo "wrote $out.csv and $out.md"
