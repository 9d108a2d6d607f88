#!/usr/bin/env bash
# A/B of PiCloud binaries on the bench-compare app: hello, kv read and kv write with wrk, the
# binaries alternating (A B A B ...) so that the machine's drift falls on both alike. The first
# binary is the baseline; each row's ratio is against it, run for run.
#   bench/ab/run.sh BASELINE OTHER [MORE...]
#   PATHS="hello kv write"  ROUNDS=2  DURATION=8 (s)  CONNECTIONS=32  THREADS=2
#   ENV_<n>="NAME=value ..."   environment for the n-th binary (1-based), e.g. ENV_2=PICLOUD_ENDPOINT_FAST_PATH=0
#   OUT=bench/results/ab-<date>.md
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/lib.sh
[ $# -ge 2 ] || { echo "usage: bench/ab/run.sh BASELINE OTHER [MORE...]" >&2; exit 2; }
need_wrk
PATHS=${PATHS:-hello kv write}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-8}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
OUT=${OUT:-bench/results/ab-$(date -u +%F)}
work=$(mktemp -d /tmp/bench-ab.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
echo 'wrk.method = "POST"' > "$work/post.lua"

binaries=("$@")
declare -A rate
for round in $(seq "$ROUNDS"); do
  for index in "${!binaries[@]}"; do
    bin=${binaries[$index]}
    envname="ENV_$((index + 1))"
    rm -rf "$work/data"
    PICLOUD_BIN=$bin PICLOUD_ENV=${!envname:-} start_picloud "$work/log" "$work/data" --log-level notice --deploy bench/compare/apps/bench
    curl -sf -XPOST "http://127.0.0.1:$port/apps/cmp/api/setup" >/dev/null
    line="round $round, $((index + 1)) $(basename "$bin") ${!envname:-}:"
    for path in $PATHS; do
      args=()
      [ "$path" = write ] && args=(-s "$work/post.lua")
      url="http://127.0.0.1:$port/apps/cmp/api/$path"
      wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "${args[@]}" "$url" >/dev/null
      value=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "${args[@]}" "$url" | awk '/Requests\/sec/ {print $2}')
      rate[$round,$index,$path]=$value
      line="$line $path $value/s"
    done
    echo "$line"
    kill "$server"; wait "$server" 2>/dev/null || true
  done
done

{
  echo "# A/B of PiCloud binaries ($(date -u +%FT%TZ))"
  echo
  echo "\`bench/ab/run.sh\`: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s per path after a 2 s warm-up, the binaries alternating, $ROUNDS rounds. Ratio: against binary 1 in the same round."
  echo
  echo "| round | binary | environment | path | requests/s | ratio to 1 |"
  echo "|---|---|---|---|---|---|"
  for round in $(seq "$ROUNDS"); do
    for index in "${!binaries[@]}"; do
      envname="ENV_$((index + 1))"
      for path in $PATHS; do
        value=${rate[$round,$index,$path]}
        base=${rate[$round,0,$path]}
        ratio=$(python3 -c "print(f'{$value / $base:.2f}')")
        echo "| $round | $((index + 1)) \`${binaries[$index]}\` | ${!envname:-} | $path | $value | $ratio |"
      done
    done
  done
} > "$OUT.md"
echo "wrote $OUT.md"
