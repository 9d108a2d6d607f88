#!/usr/bin/env bash
# Where a request's CPU goes: PiCloud's threads (event loops, SQLite's writer, Dispatch workers),
# the kernel's share of each, wrk's, and how idle the machine was, per endpoint of the
# bench-compare app under wrk, hello first as the baseline (each row's ratio is its server CPU per
# request over hello's). Counters from /proc (per-thread utime/stime, /proc/stat), so nothing is
# sampled and nothing slows the server down; the figures of docs/performance.md's CPU splits.
#   bench/cpu/run.sh
#   PATHS="hello kv write"  DURATION=6 (s)  CONNECTIONS=32  THREADS=2
#   SYSCALLS=1    also count the server's system calls per request (perf, when installed; counting
#                 every call slows the server a little, so its rows are not for comparing rates)
#   PICLOUD_BIN=path  PICLOUD_ENV="NAME=value ..."   (bench/lib.sh)
#   OUT=bench/results/cpu-<date>.md
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/lib.sh
need_wrk
PATHS=${PATHS:-hello kv write}
DURATION=${DURATION:-6}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
OUT=${OUT:-bench/results/cpu-$(date -u +%F)}
work=$(mktemp -d /tmp/bench-cpu.XXXXXX)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
if [ -z "${PICLOUD_BIN:-}" ]; then # the release build of this checkout, brought up to date
  source scripts/env.sh
  swift_release build --product picloud > "$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
fi
echo 'wrk.method = "POST"' > "$work/post.lua"
ticks=$(getconf CLK_TCK)

# threads PID → "name utime stime" per thread name (summed over threads of one name), in ticks
threads() {
  for task in /proc/"$1"/task/*; do
    # comm may hold spaces: the fields are counted from the closing parenthesis (utime and stime,
    # fields 14 and 15 of the line, are 13 and 14 once the name stands first)
    local stat name
    stat=$(cat "$task/stat" 2>/dev/null) || continue
    name=$(tr ' ' '_' < "$task/comm")
    echo "$name ${stat##*) }"
  done | awk '{u[$1] += $13; s[$1] += $14} END {for (n in u) print n, u[n], s[n]}' | sort
}

# machine → "busy idle iowait" ticks from /proc/stat
machine() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $5, $6}' /proc/stat; }

report="$work/report.md"
{
  echo "# Where a request's CPU goes ($(date -u +%F))"
  echo
  echo "\`bench/cpu/run.sh\`, run $(date -u +%FT%TZ): \`wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s\` against each endpoint of \`bench/compare/apps/bench\` on a fresh PiCloud (release build, default SQLite store), after a 2 s warm-up. CPU from \`/proc\` per thread, in µs per request (user + kernel, kernel in brackets); the ratio is the server's CPU per request over hello's. Threads by name: \`NIO-SGLTN-*\` are the event loops, where handlers run; \`-qos.overcommit\` are Dispatch workers, SQLite's writer (GRDB's queue) among them."
  echo
} > "$report"
rows="$work/rows"
: > "$rows"
base=""
for path in $PATHS; do
  post=()
  [ "$path" = write ] && post=(-s "$work/post.lua")
  rm -rf "$work/data"
  start_picloud "$work/picloud.log" "$work/data" --log-level notice --deploy bench/compare/apps/bench
  curl -sf -X POST "http://127.0.0.1:$port/apps/cmp/api/setup" >/dev/null
  url="http://127.0.0.1:$port/apps/cmp/api/$path"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "${post[@]}" "$url" >/dev/null
  threads "$server" > "$work/before"
  read -r busy0 idle0 wait0 < <(machine)
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "${post[@]}" "$url" > "$work/wrk.txt" &
  client=$!
  if [ "${SYSCALLS:-0}" = 1 ] && command -v perf >/dev/null; then
    perf stat -e raw_syscalls:sys_enter -p "$server" -o "$work/syscalls.txt" -- sleep "$DURATION" 2>/dev/null || true
  fi
  wait "$client"
  threads "$server" > "$work/after"
  read -r busy1 idle1 wait1 < <(machine)
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
  grep -q "Non-2xx" "$work/wrk.txt" && { echo "$path: failed requests"; cat "$work/wrk.txt"; exit 1; }
  calls=""
  [ -f "$work/syscalls.txt" ] && calls=$(awk '/raw_syscalls/ {gsub(",", "", $1); print $1}' "$work/syscalls.txt") && rm "$work/syscalls.txt"
  python3 - "$work/before" "$work/after" "$rps" "$DURATION" "$ticks" "$busy0 $idle0 $wait0 $busy1 $idle1 $wait1" "${base:-}" "$path" "${calls:-}" >> "$rows" <<'PY'
import sys
before, after, rps, seconds, ticks, stat, base, path, calls = sys.argv[1:]
def load(f):
    return {n: (int(u), int(s)) for n, u, s in (line.split() for line in open(f))}
a, b = load(before), load(after)
requests = float(rps) * float(seconds)
us = lambda t: t * 1e6 / int(ticks) / requests
parts, total = [], 0.0
for name in sorted(b):
    u0, s0 = a.get(name, (0, 0))
    user, kernel = us(b[name][0] - u0), us(b[name][1] - s0)
    if user + kernel >= 0.2:
        parts.append(f"{name} {user + kernel:.1f} ({kernel:.1f})")
    total += user + kernel
busy0, idle0, wait0, busy1, idle1, wait1 = map(int, stat.split())
all_ = (busy1 - busy0) + (idle1 - idle0) + (wait1 - wait0)
idle, iowait = 100 * (idle1 - idle0) / all_, 100 * (wait1 - wait0) / all_
ratio = f"{total / float(base):.2f}" if base else "1.00 (baseline)"
syscalls = f"{int(calls) / requests:.2f}" if calls else "—"
print(f"| {path} | {float(rps):,.0f} | {total:.1f} | {ratio} | {'; '.join(parts)} | {idle:.0f} % / {iowait:.0f} % | {syscalls} |")
PY
  line=$(tail -1 "$rows")
  echo "$line"
  [ -n "$base" ] || base=$(echo "$line" | awk -F'|' '{gsub(/ /, "", $4); print $4}')
done
{
  echo "| path | requests/s | server CPU µs/request | × hello | by thread: µs (kernel) | machine idle / I/O wait | system calls/request |"
  echo "|---|---|---|---|---|---|---|"
  cat "$rows"
} >> "$report"
cp "$report" "$OUT.md"
echo "wrote $OUT.md"
