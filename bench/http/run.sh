#!/usr/bin/env bash
# HTTP benchmarks of PiCloud with wrk on loopback, each next to a baseline from the same run:
#   hello     GET of an endpoint returning a small JSON object   vs  GET /healthz (no Lua)
#   kv        GET of an endpoint doing one kv.get and one kv.set  vs  the hello endpoint
#   preflight the hello endpoint on connections whose first request was a CORS preflight (as a
#             browser's first cross-origin call)  vs  hello
#   client    the same after GET /client/picloud.js (a request for the router)  vs  hello
# kv runs twice: with PICLOUD_SQLITE_SYNCHRONOUS=full (the default: every commit on disk before
# the answer) and =normal. Results: bench/results/http-<date>.{csv,md}.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
source bench/lib.sh
need_wrk
swift_release build --product picloud >/dev/null
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
date=$(date -u +%F)
out=bench/results/http-$date
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

start_server() { # $1 = synchronous mode
  PICLOUD_SQLITE_SYNCHRONOUS=$1 start_picloud "$work/server-$1.log" "$work/data-$1" --deploy bench/http/app --log-level notice
}

measure() { # name url [wrk arguments...] -> "rps p50_ms p99_ms max_ms"
  local name=$1 url=$2
  shift 2
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$url" "$@" > "$work/$name.txt"
  wrk_summary "$work/$name.txt" || { cat "$work"/server-*.log >&2; exit 1; }
}

rss() { awk '/VmRSS/ {print $2}' /proc/$server/status; }

echo "name,rps,p50_ms,p99_ms,baseline,baseline_rps,ratio,rss_kb" > "$out.csv"
row() { # name result baseline_name baseline_result
  read -r rps p50 p99 _ <<<"$2"; read -r brps _ _ _ <<<"$4"
  ratio=$(python3 -c "print(f'{$rps/$brps:.2f}')")
  echo "$1,$rps,$p50,$p99,$3,$brps,$ratio,$(rss)" >> "$out.csv"
  printf '| %s | %s | %s | %s | %s (%s req/s) | %s |\n' "$1" "$rps" "$p50" "$p99" "$3" "$brps" "$ratio" >> "$out.md"
}

{
  echo "# HTTP benchmarks ($date)"
  echo
  echo "\`bench/http/run.sh\`: wrk -t2 -c$CONNECTIONS -d$DURATION on loopback, release build, $(nproc) cores shared by wrk and PiCloud."
  echo
  echo "| endpoint | req/s | p50 ms | p99 ms | baseline | ratio |"
  echo "|---|---|---|---|---|---|"
} > "$out.md"

start_server full
base="http://127.0.0.1:$port"
curl -sf "$base/apps/bench/api/hello" >/dev/null
healthz=$(measure healthz "$base/healthz")
hello=$(measure hello "$base/apps/bench/api/hello")
preflight=$(measure preflight "$base/apps/bench/api/hello" -s bench/http/first-request.lua -- $((CONNECTIONS / 2)) preflight)
client=$(measure client "$base/apps/bench/api/hello" -s bench/http/first-request.lua -- $((CONNECTIONS / 2)) client)
kv_full=$(measure kv-full "$base/apps/bench/api/kv")
row "hello (Lua handler, JSON)" "$hello" "/healthz, no Lua" "$healthz"
row "hello, each connection's first request a CORS preflight" "$preflight" "hello" "$hello"
row "hello, each connection's first request GET /client/picloud.js" "$client" "hello" "$hello"
row "kv.get + kv.set, synchronous=full" "$kv_full" "hello" "$hello"
kill $server; wait $server 2>/dev/null || true

start_server normal
base="http://127.0.0.1:$port"
kv_normal=$(measure kv-normal "$base/apps/bench/api/kv")
row "kv.get + kv.set, synchronous=normal" "$kv_normal" "hello" "$hello"
kill $server; wait $server 2>/dev/null || true

cat "$out.md"
echo "wrote $out.csv and $out.md"
