#!/usr/bin/env bash
# Soak: a mixed load (kv reads and durable writes whose trigger runs, documents inserted, queried
# and deleted, files overwritten in a ring, publishes to a topic with 50 browsers following it)
# for DURATION seconds against the release binary on its default SQLite store, sampling the
# server's RSS, open files, outbox depth and the clients' errors every SAMPLE seconds. Writes
# bench/results/soak-<date>.{csv,md}: the samples, and the growth of each over the second half of
# the run (after the caches and the history have filled).
#   DURATION=600 SAMPLE=10 CONNECTIONS=16 SUBSCRIBERS=50
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
source bench/lib.sh
DURATION=${DURATION:-600}
SAMPLE=${SAMPLE:-10}
CONNECTIONS=${CONNECTIONS:-16}
SUBSCRIBERS=${SUBSCRIBERS:-50}
need_wrk
swift_release build --product picloud 2>&1 | tail -1

work=$(mktemp -d /tmp/bench-soak.XXXXXX)
pids=()
cleanup() { for pid in "${pids[@]+"${pids[@]}"}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
PICLOUD_FILES_SWEEP_INTERVAL_SEC=60 start_picloud "$work/server.log" "$work/data" --log-level notice --deploy bench/soak/app
pids+=("$server")
base=http://127.0.0.1:$port
admin=$(cat "$work/data/admin-token")
curl -sf -X PUT -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' -d 42 "$base/admin/apps/soak/kv/hot" >/dev/null
for i in $(seq "$SUBSCRIBERS"); do
  curl -sN "$base/apps/soak/realtime/feed" > "$work/sub-$i.txt" 2>/dev/null &
  pids+=($!)
done
echo "soak: $DURATION s against $base, $CONNECTIONS connections, $SUBSCRIBERS subscribers, a sample every $SAMPLE s"
wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s -s bench/soak/mix.lua "$base" > "$work/wrk.txt" 2>&1 &
load=$!
pids+=("$load")
start=$(date +%s)
echo "seconds,rss_kib,open_files,outbox_depth,subscribers,requests,handler_errors,triggered" > "$work/samples.csv"
metric() { curl -sf "$base/metrics" | awk -v name="$1" '$1 == name { print $2 }' | head -1; }
while kill -0 "$load" 2>/dev/null; do
  sleep "$SAMPLE"
  kill -0 "$load" 2>/dev/null || break # only samples taken under load
  now=$(( $(date +%s) - start ))
  rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$server/status")
  files=$(ls "/proc/$server/fd" | wc -l)
  depth=$(metric picloud_outbox_depth)
  subs=$(metric picloud_realtime_subscribers)
  requests=$(metric picloud_endpoint_requests_total)
  failures=$(metric picloud_endpoint_errors_total)
  triggered=$(curl -sf -H "Authorization: Bearer $admin" "$base/admin/apps/soak/kv?prefix=triggered" | python3 -c 'import json,sys; items=json.load(sys.stdin)["items"]; print(items[0]["value"] if items else 0)')
  echo "$now,$rss,$files,${depth:-0},${subs:-0},${requests:-0},${failures:-0},$triggered" | tee -a "$work/samples.csv"
done
wait "$load" || true
sleep 3 # the outbox drains
final_depth=$(metric picloud_outbox_depth)
python3 bench/soak/report.py "$work/samples.csv" "$work/wrk.txt" "${final_depth:-0}" "$DURATION" "$CONNECTIONS" "$SUBSCRIBERS" "$SAMPLE" "$(grep -c '^data:' "$work"/sub-*.txt | awk -F: '{ s += $2 } END { print s }')"
