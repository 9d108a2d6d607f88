#!/usr/bin/env bash
# What a handler that computes does to the other requests of its event loop, with time slices
# (PICLOUD_LUA_TIME_SLICE_MS=2, the default) and without (=0, OpenResty's model), in one run:
#   wrk -t1 -c8 on a hello endpoint, alone and while SPINNERS clients call an endpoint that
#   computes for ~0.1-0.2 s without waiting, one request after another.
# Results: bench/results/slices-<date>.{csv,md}.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
source bench/lib.sh
need_wrk
swift_release build --product picloud >/dev/null
DURATION=${DURATION:-10s}
SPINNERS=${SPINNERS:-2}
SLICE_MS=${SLICE_MS:-2}
date=$(date -u +%F)
out=bench/results/slices-$date
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

measure() { # name url -> "rps p50_ms p99_ms max_ms"
  wrk -t1 -c8 -d"$DURATION" --latency "$2" > "$work/$1.txt"
  wrk_summary "$work/$1.txt"
}

# run SLICE_MS SPINNERS -> "rps p50 p99 max spins"
run() {
  PICLOUD_LUA_TIME_SLICE_MS=$1 start_picloud "$work/server-$1-$2.log" "$work/data-$1-$2" --deploy bench/slices/app --log-level notice
  local base="http://127.0.0.1:$port/apps/slices/api"
  curl -sf "$base/hello" >/dev/null
  local spinners=()
  for i in $(seq "$2"); do
    ( n=0; trap 'echo $n > "$work/spins-$i"; exit 0' TERM
      while :; do curl -sf "$base/spin" >/dev/null && n=$((n + 1)); done ) &
    spinners+=($!)
  done
  sleep 1
  local result
  result=$(measure "hello-$1-$2" "$base/hello")
  local spins=0
  for pid in "${spinners[@]}"; do kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; done
  for i in $(seq "$2"); do spins=$((spins + $(cat "$work/spins-$i" 2>/dev/null || echo 0))); done
  kill "$server"; wait "$server" 2>/dev/null || true
  echo "$result $spins"
}

alone=$(run "$SLICE_MS" 0)
sliced=$(run "$SLICE_MS" "$SPINNERS")
unsliced=$(run 0 "$SPINNERS")

echo "name,time_slice_ms,spinners,hello_rps,p50_ms,p99_ms,max_ms,spin_requests" > "$out.csv"
{
  echo "# Time slices ($date)"
  echo
  echo "\`bench/slices/run.sh\`: wrk -t1 -c8 -d$DURATION on a hello endpoint, release build, $(nproc) cores"
  echo "shared by wrk, curl and PiCloud; meanwhile $SPINNERS clients call, one request after another,"
  echo "an endpoint that computes for about 0.1-0.2 s without waiting."
  echo
  echo "| run | hello req/s | p50 ms | p99 ms | max ms | spin requests |"
  echo "|---|---|---|---|---|---|"
} > "$out.md"
row() { # name slice spinners result
  read -r rps p50 p99 peak spins <<<"$4"
  echo "$1,$2,$3,$rps,$p50,$p99,$peak,$spins" >> "$out.csv"
  printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$rps" "$p50" "$p99" "$peak" "$spins" >> "$out.md"
}
row "hello alone" "$SLICE_MS" 0 "$alone"
row "with spinners, $SLICE_MS ms slices" "$SLICE_MS" "$SPINNERS" "$sliced"
row "with spinners, no slices (PICLOUD_LUA_TIME_SLICE_MS=0)" 0 "$SPINNERS" "$unsliced"
read -r _ _ p99s _ _ <<<"$sliced"; read -r _ _ p99u _ _ <<<"$unsliced"
echo >> "$out.md"
echo "p99 of hello while handlers compute: $(python3 -c "print(f'{$p99u/$p99s:.1f}')")× lower with time slices." >> "$out.md"
cat "$out.md"
echo "wrote $out.csv and $out.md"
