#!/usr/bin/env bash
# Trigger delivery benchmark on SQLite: deliveries/s and the time from an event being due to its
# handler starting (p50/p99), with a trivial handler, 1 and 8 handlers at once. Next to it, as
# the baseline from the same run: durable one-row writes/s (the ceiling of a store that commits
# every change). Results: bench/results/triggers-<date>.{csv,md}.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
source bench/lib.sh
swift_release build --product picloud >/dev/null
EVENTS=${EVENTS:-20000}
date=$(date -u +%F)
out=bench/results/triggers-$date
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

start_server() { # concurrency
  PICLOUD_DISPATCHER_CONCURRENCY=$1 start_picloud "$work/server-$1.log" "$work/data-$1" --deploy bench/triggers/app --log-level notice
}

metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v name="$1" '$1 == name {print $2}'; }

run_case() { # concurrency -> "overall_per_s drain_per_s p50_ms p99_ms writes_per_s"
  start_server "$1"
  local base="http://127.0.0.1:$port/apps/tbench/api"
  local t0 t1 start published d1 t2
  t0=$(date +%s.%N)
  curl -sf -X POST "$base/write/$EVENTS" >/dev/null
  t1=$(date +%s.%N)
  start=$(date +%s.%N)
  curl -sf -X POST "$base/publish/$EVENTS" >/dev/null
  published=$(date +%s.%N)
  d1=$(metric picloud_trigger_deliveries_total); d1=${d1%.*}; d1=${d1:-0}
  while :; do
    delivered=$(metric picloud_trigger_deliveries_total); delivered=${delivered:-0}
    [ "${delivered%.*}" -ge "$EVENTS" ] && break
    sleep 0.05
  done
  t2=$(date +%s.%N)
  curl -s "http://127.0.0.1:$port/metrics" > "$work/metrics-$1.txt"
  kill $server; wait $server 2>/dev/null || true
  read -r p50 p99 <<<"$(quantiles "$work/metrics-$1.txt" picloud_trigger_start_latency_seconds)"
  # When delivery kept up with publishing there is no backlog worth timing: report n/a.
  python3 -c "
left = $EVENTS - $d1
backlog = f'{left / max($t2 - $published, 1e-9):.0f}' if left >= $EVENTS / 10 else 'n/a'
print(f'{$EVENTS / ($t2 - $start):.0f} {backlog} $p50 $p99 {$EVENTS / ($t1 - $t0):.0f}')"
}

{
  echo "# Trigger delivery benchmark ($date)"
  echo
  echo "\`bench/triggers/run.sh\`: $EVENTS events published one transaction each by a handler, delivered to a handler that does nothing; release build, SQLite (synchronous=full), $(nproc) cores. Latency = event due → handler start, from the dispatcher's histogram (the value is the upper bound of the bucket that holds the quantile). Baseline: the same handler doing $EVENTS durable kv.set calls."
  echo
  echo "Two rates: *overall* counts from the first publish to the last delivery (publishing and delivering share the disk and the 2 cores); *backlog* counts the deliveries left when publishing ended, over the time they took (the dispatcher alone; n/a when fewer than 10% were left, i.e. delivery kept up with publishing)."
  echo
  echo "In a burst, one handler at a time is slower than the publisher, so events wait in line: its start latency measures that queue (it varies from run to run with how far behind delivery falls), not the dispatcher's reaction time, which the steady-rate line below shows."
  echo
  echo "| handlers at once | deliveries/s overall | deliveries/s backlog | start latency p50 (ms, ≤) | p99 (ms, ≤) | baseline writes/s | overall / baseline |"
  echo "|---|---|---|---|---|---|---|"
} > "$out.md"
echo "concurrency,overall_per_s,backlog_per_s,p50_ms_le,p99_ms_le,baseline_writes_per_s,ratio" > "$out.csv"
for concurrency in ${CONCURRENCY_LEVELS:-1 8}; do
  read -r overall drain p50 p99 writes <<<"$(run_case $concurrency)"
  ratio=$(python3 -c "print(f'{$overall/$writes:.2f}')")
  echo "$concurrency,$overall,$drain,$p50,$p99,$writes,$ratio" >> "$out.csv"
  echo "| $concurrency | $overall | $drain | $p50 | $p99 | $writes | $ratio |" >> "$out.md"
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
read -r p50 p99 <<<"$(quantiles "$work/metrics-steady.txt" picloud_trigger_start_latency_seconds)"
echo "steady-500-per-s,,,$p50,$p99,," >> "$out.csv"
{
  echo
  echo "At a steady 500 events/s (one publish per HTTP request, 8 handlers at once): start latency p50 ≤ $p50 ms, p99 ≤ $p99 ms."
} >> "$out.md"
cat "$out.md"
echo "wrote $out.csv and $out.md"
