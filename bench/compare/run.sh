#!/usr/bin/env bash
# PiCloud side by side with the peers Lua users know (issue 8): each workload runs against PiCloud,
# then against its peer, one after the other, on this machine, on loopback, each server with its
# own temporary config and directory; everything is stopped afterwards.
#   hello        GET of a small JSON object             vs  nginx + ngx_lua content_by_lua_block
#   kv-read      one kv.get of a hot key                vs  ngx_lua lua_shared_dict get
#   kv-write     one durable kv.set of a new value      vs  Redis EVALSHA, appendfsync always (redis-benchmark)
#                                                           and Tarantool replace, wal_mode=fsync, 64 fibers
#   trigger      kv.set whose trigger handler runs      (no peer: the issue's absolute goal)
#   fanout       N SSE subscribers on one topic         vs  nchan EventSource, same N and rate
#   cold-start   process start → ready; deploy → first invocation   vs  nginx start; nginx reload
# Results: rows appended to bench/results/compare-<date>.csv, and compare-<date>.md and .png
# (see bench/compare/README.md for what every column means). Settings (environment):
#   WORKLOADS="hello kv-read kv-write trigger fanout cold-start"   which to run
#   DURATION=10 WARMUP=2 (seconds)  CONNECTIONS=32 THREADS=2       wrk and redis-benchmark
#   ROUNDS=3                        hello, kv-read, kv-write: rounds of PiCloud and its peer back to back (median used)
#   TARANTOOL_FIBERS=64
#   TRIGGER_EVENTS=20000 TRIGGER_WRITERS=$CONNECTIONS STEADY_EVENTS=2000 STEADY_RATE=500
#   TRIGGER_RATES="5000 10000" TRIGGER_RATE_SECONDS=3   open-loop passes, one write per request ($CONNECTIONS connections)
#   FANOUT_SUBSCRIBERS="1000 10000"  FANOUT_EVENTS, FANOUT_RATE (default 200 events at 20/s below
#   5,000 subscribers, 50 at 5/s from there, as bench/realtime)  CLIENT_THREADS=1
#   COLD_REPEATS=5  NGINX_WORKERS=$(nproc)
#   WAIT_IDLE_SEC=0 IDLE_LOAD=1.5   wait up to this long for the 1-minute load average to fall below IDLE_LOAD
#   BUSY_CORES=0.25 BUSY_RETRIES=2  run a workload again (at most this often) when other processes used more
#                                   than this many cores while it ran
#   OUT=bench/results/compare-<date>   where the results go
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
source bench/lib.sh

WORKLOADS=${WORKLOADS:-hello kv-read kv-write trigger fanout cold-start}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
TARANTOOL_FIBERS=${TARANTOOL_FIBERS:-64}
TRIGGER_EVENTS=${TRIGGER_EVENTS:-20000}
TRIGGER_WRITERS=${TRIGGER_WRITERS:-$CONNECTIONS}
STEADY_EVENTS=${STEADY_EVENTS:-2000}
STEADY_RATE=${STEADY_RATE:-500}
TRIGGER_RATES=${TRIGGER_RATES:-5000 10000}
TRIGGER_RATE_SECONDS=${TRIGGER_RATE_SECONDS:-3}
FANOUT_SUBSCRIBERS=${FANOUT_SUBSCRIBERS:-1000 10000}
CLIENT_THREADS=${CLIENT_THREADS:-1}
COLD_REPEATS=${COLD_REPEATS:-5}
NGINX_WORKERS=${NGINX_WORKERS:-$(nproc)}
WAIT_IDLE_SEC=${WAIT_IDLE_SEC:-0}
IDLE_LOAD=${IDLE_LOAD:-1.5}
BUSY_CORES=${BUSY_CORES:-0.25}
BUSY_RETRIES=${BUSY_RETRIES:-2}
date=$(date -u +%F)
out=${OUT:-bench/results/compare-$date}
here=bench/compare
root=$(pwd)
py="python3 $here/compare.py"

# --- what the peers need (Debian packages), only when missing -------------------------------------
need=()
command -v nginx >/dev/null || need+=(nginx)
[ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] || need+=(libnginx-mod-http-lua)
[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] || need+=(libnginx-mod-nchan)
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
command -v tarantool >/dev/null || need+=(tarantool)
command -v wrk >/dev/null || need+=(wrk)
cjson=$(ls /usr/lib/*/lua/5.1/cjson.so 2>/dev/null | head -1 || true)
[ -n "$cjson" ] || need+=(lua-cjson)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench-compare: installing ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  cjson=$(ls /usr/lib/*/lua/5.1/cjson.so | head -1)
fi

# --- PiCloud, release (SwiftPM waits by itself while another build holds .build's lock) -----------
work=$(mktemp -d /tmp/bench-compare.XXXXXX)
for product in picloud realtime-bench; do
  swift_release build --product $product > "$work/build.log" 2>&1 || { grep -v '^warning:\|^    /' "$work/build.log" | tail -40; rm -rf "$work"; exit 1; }
done

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
pids=()
cleanup() {
  for pid in "${pids[@]+"${pids[@]}"}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]+"${pids[@]}"}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

stop() { # pid what [expected status]: SIGTERM, wait (another exit status than 0 or the expected one is noted), and forget it
  local code=0
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || code=$?
  [ "$code" -eq 0 ] || [ "$code" -eq "${3:-0}" ] || echo "$2 exited with status $code after SIGTERM" >> "$work/exits.txt"
  local kept=() pid
  for pid in "${pids[@]+"${pids[@]}"}"; do [ "$pid" = "$1" ] || kept+=("$pid"); done
  pids=("${kept[@]+"${kept[@]}"}")
}

# --- the machine: wait for it to calm down if asked, and say how busy it was ----------------------
load1() { cut -d' ' -f1 /proc/loadavg; }
waited=0
while python3 -c "import sys; sys.exit(0 if $(load1) >= $IDLE_LOAD else 1)" && [ "$waited" -lt "$WAIT_IDLE_SEC" ]; do
  echo "bench-compare: 1-minute load average $(load1) ≥ $IDLE_LOAD, waiting ($waited of $WAIT_IDLE_SEC s)"
  sleep 60
  waited=$((waited + 60))
done
load_start=$(load1)
probe_start=$($py probe "$work")
echo "machine speed at the start (compare.py probe): $probe_start"
if python3 -c "import sys; sys.exit(0 if $load_start < $IDLE_LOAD else 1)"; then
  load_note="1-minute load average $load_start when the run started (below $IDLE_LOAD"
  [ "$waited" -gt 0 ] && load_note+=", after waiting $((waited / 60)) min"
  load_note+=")"
else
  load_note="1-minute load average $load_start when the run started: the machine was busy with other work"
  [ "$WAIT_IDLE_SEC" -gt 0 ] && load_note+=" (it did not fall below $IDLE_LOAD within $((WAIT_IDLE_SEC / 60)) min)"
  load_note+=", so the figures are lower than on an idle machine"
fi
echo "bench-compare: $load_note"
$py facts "$work" > "$work/facts.json"
$py versions > "$work/versions.json"

# --- servers ------------------------------------------------------------------------------------
# start_picloud (bench/lib.sh) LOG DATA [serve arguments] → $server, $port
picloud() { # name [serve arguments]: a fresh PiCloud with a new data directory
  local name=$1
  shift
  rm -rf "$work/data-$name"
  start_picloud "$work/picloud-$name.log" "$work/data-$name" --log-level notice "$@"
  pids+=("$server")
}

nginx_prefix() { # name → prints the prefix of a fresh nginx config (not started)
  local prefix=$work/nginx-$1
  rm -rf "$prefix"
  mkdir -p "$prefix/tmp"
  : > "$prefix/deploy.conf"
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|$($py free-port)|g" -e "s|@WORKERS@|$NGINX_WORKERS|g" -e "s|@CPATH@|$(dirname "$cjson")|g" \
    "$here/peers/nginx.conf.in" > "$prefix/nginx.conf"
  echo "$prefix"
}

start_nginx() { # name → $nginx (master pid), $nginx_port, $prefix
  prefix=$(nginx_prefix "$1")
  nginx -c "$prefix/nginx.conf" -p "$prefix" 2>>"$prefix/stderr.log" &
  nginx=$!
  pids+=("$nginx")
  nginx_port=$(grep -o 'listen 127.0.0.1:[0-9]*' "$prefix/nginx.conf" | grep -o '[0-9]*$')
  $py wait-http "http://127.0.0.1:$nginx_port/hello" 30 || { echo "nginx did not start:"; cat "$prefix"/*.log; exit 1; }
}

start_swiftnio() { # mode ready-path name → $nio (pid), $nio_port: a bare SwiftNIO baseline of realtime-bench
  nio_port=$($py free-port)
  .build/release/realtime-bench "$1" --port "$nio_port" --threads "$(nproc)" 2>"$work/swiftnio-$3.log" &
  nio=$!
  pids+=("$nio")
  $py wait-http "http://127.0.0.1:$nio_port$2" 30 || { echo "the SwiftNIO baseline ($1) did not start:"; cat "$work/swiftnio-$3.log"; exit 1; }
}

# --- HTTP workloads with wrk ---------------------------------------------------------------------
echo 'wrk.method = "POST"' > "$work/post.lua"
wrk_run() { # workload side url [wrk args] → $work/workload-side.json; $pss_pids are measured after
  local workload=$1 side=$2 url=$3
  shift 3
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" "$@" "$url" >/dev/null
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$url" > "$work/$workload-$side.wrk"
  $py wrk "$work/$workload-$side.wrk" pss_kib="$($py pss $pss_pids)" > "$work/$workload-$side.json"
  echo "  $workload $side: $(cat "$work/$workload-$side.json")"
}

picloud_wrk() { # workload path [wrk args]: a fresh PiCloud on the bench app, set up, one wrk run
  local workload=$1 path=$2
  shift 2
  picloud "$workload" --deploy "$here/apps/bench"
  curl -sf -X POST "http://127.0.0.1:$port/apps/cmp/api/setup" >/dev/null
  pss_pids=$server wrk_run "$workload" picloud "http://127.0.0.1:$port$path" "$@"
  stop "$server" "PiCloud ($workload)"
}

http_workload() { # workload picloud_path nginx_path [wrk args]
  local workload=$1 ppath=$2 npath=$3 rounds=1 round sides
  shift 3
  echo "$workload"
  # Against nginx: ROUNDS rounds, the two sides back to back in each (the first side alternating),
  # so that a slow spell of this VM falls on both sides of one round, and the median round is used.
  if [ -n "$npath" ]; then rounds=$ROUNDS; fi
  for round in $(seq "$rounds"); do
    sides=picloud
    if [ "$rounds" -gt 1 ]; then
      echo " round $round of $rounds"
      sides="picloud nginx"
      if [ $((round % 2)) -eq 0 ]; then sides="nginx picloud"; fi
    elif [ -n "$npath" ]; then
      sides="picloud nginx"
    fi
    for side in $sides; do
      if [ "$side" = picloud ]; then
        picloud_wrk "$workload" "$ppath" "$@"
      else
        start_nginx "$workload"
        pss_pids=$($py procs "$nginx") wrk_run "$workload" nginx "http://127.0.0.1:$nginx_port$npath" "$@"
        stop "$nginx" "nginx ($workload)"
      fi
      if [ "$rounds" -gt 1 ]; then mv "$work/$workload-$side.json" "$work/$workload-$side-$round.json"; fi
    done
  done
  if [ "$rounds" -gt 1 ]; then $py rounds "$work" "$workload" "$rounds"; fi
  if [ "$workload" = hello ]; then
    # The floor of PiCloud's stack: a bare SwiftNIO server answering every request with the same
    # prebuilt JSON answer (no HTTP parsing, routing or Lua).
    start_swiftnio hello-server /hello "$workload"
    pss_pids=$nio wrk_run "$workload" swiftnio "http://127.0.0.1:$nio_port/hello" "$@"
    stop "$nio" "SwiftNIO baseline ($workload)" 143 # no SIGTERM handler: killed by it is its normal end
  fi
}

kv_write_redis() { # → $work/kv-write-redis.json
  local dir=$work/redis rport sha rate n
  rm -rf "$dir"
  mkdir -p "$dir"
  rport=$($py free-port)
  sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$rport|g" "$here/peers/redis.conf.in" > "$dir/redis.conf"
  redis-server "$dir/redis.conf" &
  local redis=$!
  pids+=("$redis")
  for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
  sha=$(redis-cli -p "$rport" SCRIPT LOAD "return redis.call('SET', KEYS[1], ARGV[1])")
  # redis-benchmark counts requests: a warm-up run gives the rate, the timed run lasts about DURATION
  # -r: each write stores a random 12-digit value (__rand_int__), as PiCloud's handler a new one
  redis-benchmark -p "$rport" -c "$CONNECTIONS" --threads "$THREADS" -n 5000 -r 1000000000000 --csv EVALSHA "$sha" 1 w __rand_int__ > "$work/redis-warmup.csv"
  rate=$($py redis-csv "$work/redis-warmup.csv" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["rps"]))')
  n=$((rate * DURATION > 5000 ? rate * DURATION : 5000))
  redis-benchmark -p "$rport" -c "$CONNECTIONS" --threads "$THREADS" -n "$n" -r 1000000000000 --csv EVALSHA "$sha" 1 w __rand_int__ > "$work/redis.csv"
  [[ "$(redis-cli -p "$rport" GET w)" =~ ^[0-9]{12}$ ]] || { echo "redis: the script did not write"; exit 1; }
  $py redis-csv "$work/redis.csv" pss_kib="$($py pss "$redis")" requests="$n" > "$work/kv-write-redis.json"
  echo "  kv-write redis: $(cat "$work/kv-write-redis.json")"
  stop "$redis" "redis-server"
}

kv_write_workload() {
  local round sides side
  echo kv-write
  # ROUNDS rounds of PiCloud and Redis back to back (the first side alternating), as hello and
  # kv-read against nginx: the median round's ratio is used.
  for round in $(seq "$ROUNDS"); do
    sides="picloud redis"
    if [ $((round % 2)) -eq 0 ]; then sides="redis picloud"; fi
    echo " round $round of $ROUNDS"
    for side in $sides; do
      if [ "$side" = picloud ]; then
        picloud_wrk kv-write /apps/cmp/api/write -s "$work/post.lua"
      else
        kv_write_redis
      fi
      mv "$work/kv-write-$side.json" "$work/kv-write-$side-$round.json"
    done
  done
  $py rounds "$work" kv-write "$ROUNDS" picloud redis

  rm -rf "$work/tarantool"
  mkdir -p "$work/tarantool"
  (cd "$work/tarantool" && tarantool "$root/$here/peers/tarantool-replace.lua" "$work/tarantool" "$TARANTOOL_FIBERS" "$DURATION") > "$work/tarantool.txt"
  read -r count seconds p50 p99 < "$work/tarantool.txt"
  python3 -c "import json; print(json.dumps({'rps': $count / $seconds, 'p50_ms': $p50, 'p99_ms': $p99, 'fibers': $TARANTOOL_FIBERS}))" > "$work/kv-write-tarantool.json"
  echo "  kv-write tarantool: $(cat "$work/kv-write-tarantool.json")"
}

# --- trigger ---------------------------------------------------------------------------------------
trigger_workload() {
  echo "trigger"
  picloud trigger --deploy "$here/apps/trigger"
  $py trigger "$port" "$TRIGGER_EVENTS" "$TRIGGER_WRITERS" "$STEADY_EVENTS" "$STEADY_RATE" > "$work/trigger-picloud.json" \
    || { cat "$work/picloud-trigger.log"; exit 1; }
  echo "  $(cat "$work/trigger-picloud.json")"
  # One request per write at fixed rates, open loop: what a client sending that many writes sees.
  local rate
  for rate in $TRIGGER_RATES; do
    $py trigger-paced "$port" .build/release/realtime-bench "$rate" "$TRIGGER_RATE_SECONDS" "$CONNECTIONS" > "$work/trigger-paced-$rate.json" \
      || { cat "$work/picloud-trigger.log"; exit 1; }
    echo "  at $rate/s: $(cat "$work/trigger-paced-$rate.json")"
  done
  stop "$server" "PiCloud (trigger)"

  # The dispatcher alone: a backlog written by a server that delivers nothing, then a server
  # started on it and timed until it delivered every row of the outbox.
  local data=$work/data-trigger-backlog
  rm -rf "$data"
  PICLOUD_ENV="PICLOUD_DISPATCHER_CONCURRENCY=0" start_picloud "$work/picloud-trigger-backlog.log" "$data" --log-level notice --deploy "$here/apps/trigger"
  pids+=("$server")
  $py trigger-backlog "$port" "$TRIGGER_EVENTS" "$TRIGGER_WRITERS" > "$work/trigger-backlog.json" || { cat "$work/picloud-trigger-backlog.log"; exit 1; }
  stop "$server" "PiCloud (trigger backlog)"
  local left
  left=$(python3 -c "import sqlite3; print(sqlite3.connect('$data/picloud.sqlite').execute('SELECT count(*) FROM outbox').fetchone()[0])")
  start_picloud "$work/picloud-trigger-drain.log" "$data" --log-level notice
  pids+=("$server")
  $py trigger-drain "$port" "$left" > "$work/trigger-drain.json" || { cat "$work/picloud-trigger-drain.log"; exit 1; }
  echo "  backlog $(cat "$work/trigger-backlog.json"), drain $(cat "$work/trigger-drain.json")"
  stop "$server" "PiCloud (trigger drain)"
}

# --- fan-out -----------------------------------------------------------------------------------------
fanout_side() { # side n events rate server_pid port count_url count_metric [client args] → $work/fanout-n-side.json
  local side=$1 n=$2 m=$3 rate=$4 pid=$5 sport=$6 count_url=$7 metric=$8
  shift 8
  local procs before after cpu0 cpu1 client
  procs=$($py procs "$pid")
  before=$($py pss $procs)
  cpu0=$($py cpu $procs)
  .build/release/realtime-bench client --port "$sport" --pid "$(echo $procs | tr ' ' ',')" --subscribers "$n" --events "$m" \
    --rate "$rate" --threads "$CLIENT_THREADS" --settle 3 "$@" > "$work/fanout-$n-$side.client.json" 2> "$work/fanout-$n-$side.client.log" &
  client=$!
  after=""
  if $py wait-count "$count_url" "$metric" "$n" 180; then
    sleep 1
    after=$($py pss $procs)
  fi
  wait "$client" || { echo "realtime-bench client failed against $side:"; cat "$work/fanout-$n-$side.client.log"; exit 1; }
  cpu1=$($py cpu $procs)
  python3 - "$work/fanout-$n-$side.client.json" "$n" "$m" "$rate" "$before" "${after:-0}" "$cpu0" "$cpu1" > "$work/fanout-$n-$side.json" <<'PY'
import json, sys
client, n, m, rate, before, after, cpu0, cpu1 = sys.argv[1:]
print(json.dumps({"client": json.load(open(client)), "n": int(n), "events": int(m), "rate": float(rate),
                  "pss_before": int(before), "pss_after": int(after) or None, "cpu_s": float(cpu1) - float(cpu0)}))
PY
  sed 's/^/  /' "$work/fanout-$n-$side.client.log"
}

fanout_workload() {
  for n in $FANOUT_SUBSCRIBERS; do
    local m rate
    if [ -n "${FANOUT_EVENTS:-}" ]; then m=$FANOUT_EVENTS; elif [ "$n" -lt 5000 ]; then m=200; else m=50; fi
    if [ -n "${FANOUT_RATE:-}" ]; then rate=$FANOUT_RATE; elif [ "$n" -lt 5000 ]; then rate=20; else rate=5; fi
    echo "fanout $n subscribers, $m events at $rate/s, then $m back to back"
    # Every subscriber comes from 127.0.0.1: lift the per-client stream limit (5,000 by default).
    PICLOUD_REALTIME_HEARTBEAT_SEC=30 PICLOUD_REALTIME_MAX_SUBSCRIBERS_PER_CLIENT=100000 picloud "fanout-$n" --deploy "$here/apps/bench"
    fanout_side picloud "$n" "$m" "$rate" "$server" "$port" "http://127.0.0.1:$port/metrics" picloud_realtime_subscribers \
      --subscribe-path /apps/cmp/realtime/bench --publish-path /apps/cmp/api/publish
    stop "$server" "PiCloud (fanout $n)"
    start_nginx "fanout-$n"
    fanout_side nchan "$n" "$m" "$rate" "$nginx" "$nginx_port" "http://127.0.0.1:$nginx_port/status" "subscribers:" \
      --subscribe-path /sub --publish-path /pub --count-path /status --count-metric "subscribers:"
    stop "$nginx" "nginx (fanout $n)"
    # The floor for this machine and client: a bare SwiftNIO server (no Lua, database, topics or
    # history) writing one prebuilt frame per event to every stream (bench/RealtimeBench/BaselineServer.swift).
    start_swiftnio baseline-server /count "fanout-$n"
    fanout_side swiftnio "$n" "$m" "$rate" "$nio" "$nio_port" "http://127.0.0.1:$nio_port/count" "" \
      --subscribe-path /apps/cmp/realtime/bench --publish-path /apps/cmp/api/publish --count-path /count --count-metric ""
    stop "$nio" "SwiftNIO fan-out baseline ($n)" 143 # no SIGTERM handler: killed by it is its normal end
  done
}

# --- cold start and deploy ------------------------------------------------------------------------------
cold_workload() {
  echo "cold start"
  $py cold-picloud .build/release/picloud "$here/apps/bench" "$COLD_REPEATS" "$work" > "$work/cold-picloud.json"
  echo "  picloud: $(cat "$work/cold-picloud.json")"
  $py cold-nginx "$(nginx_prefix cold)" "$COLD_REPEATS" > "$work/cold-nginx.json"
  echo "  nginx: $(cat "$work/cold-nginx.json")"
  echo "deploy → first invocation"
  local token=pc_compare_$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  PICLOUD_ADMIN_TOKEN=$token picloud deploy --deploy "$here/apps/deploy"
  $py deploy-picloud "$port" "$token" "$here/apps/deploy" "$COLD_REPEATS" > "$work/deploy-picloud.json"
  echo "  picloud: $(cat "$work/deploy-picloud.json")"
  stop "$server" "PiCloud (deploy)"
  start_nginx deploy
  $py deploy-nginx "$prefix" "$COLD_REPEATS" > "$work/deploy-nginx.json"
  echo "  nginx: $(cat "$work/deploy-nginx.json")"
  stop "$nginx" "nginx (deploy)"
}

busy() { # workload → success if other processes used more than BUSY_CORES while it ran
  python3 -c "import sys; sys.exit(0 if $($py other-cores "$work" "$1" | cut -d' ' -f1) > $BUSY_CORES else 1)"
}

run_workload() {
  case $1 in
    hello) http_workload hello /apps/cmp/api/hello /hello ;;
    kv-read) http_workload kv-read /apps/cmp/api/kv /kv ;;
    kv-write) kv_write_workload ;;
    trigger) trigger_workload ;;
    fanout) fanout_workload ;;
    cold-start) cold_workload ;;
    *) echo "unknown workload $1 (hello kv-read kv-write trigger fanout cold-start)"; exit 2 ;;
  esac
}

for workload in $WORKLOADS; do
  for attempt in $(seq 0 "$BUSY_RETRIES"); do
    $py mark $$ > "$work/$workload.marks"
    run_workload "$workload"
    $py mark $$ >> "$work/$workload.marks"
    echo "  other processes used $($py other-cores "$work" "$workload") meanwhile"
    busy "$workload" && [ "$attempt" -lt "$BUSY_RETRIES" ] || break
    echo "  more than $BUSY_CORES cores were busy with other work: $workload again in 30 s"
    sleep 30
  done
done

# --- the report ---------------------------------------------------------------------------------------
# PiCloud's log lines at warning or above, from every PiCloud this run started
for log in "$work"/picloud-*.log "$work"/cold-*.log; do
  [ -f "$log" ] || continue
  grep -E '^\S+ (warning|error|critical) ' "$log" | sed "s|^|$(basename "$log" .log): |" >> "$work/problems.txt" || true
done
[ -f "$work/exits.txt" ] && cat "$work/exits.txt" >> "$work/problems.txt"
[ -s "$work/problems.txt" ] && { echo "problems seen:"; head -20 "$work/problems.txt"; }
probe_end=$($py probe "$work")
echo "machine speed at the end: $probe_end"
python3 - "$work/params.json" <<PY
import json, sys
json.dump({"date": "$date", "run": "$(date -u +%FT%TZ)", "duration": $DURATION, "warmup": $WARMUP, "connections": $CONNECTIONS,
           "threads": $THREADS, "rounds": $ROUNDS, "tarantool_fibers": $TARANTOOL_FIBERS, "trigger_events": $TRIGGER_EVENTS, "trigger_writers": $TRIGGER_WRITERS,
           "steady_events": $STEADY_EVENTS, "steady_rate": $STEADY_RATE, "trigger_rate_seconds": $TRIGGER_RATE_SECONDS, "client_threads": $CLIENT_THREADS, "cold_repeats": $COLD_REPEATS,
           "nginx_workers": $NGINX_WORKERS, "ulimit": $(ulimit -n), "workloads": "$WORKLOADS",
           "probe_start": $probe_start, "probe_end": $probe_end,
           "load_note": """$load_note; $(load1) when it ended (the benchmark's own processes count in that)"""}, open(sys.argv[1], "w"))
PY
mkdir -p "$(dirname "$out")"
$py report "$work" "$out"

# The chart: matplotlib from PyPI in a virtual environment under .build (git-ignored).
venv=.build/bench-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import matplotlib" 2>/dev/null; then
  python3 -m venv "$venv" && "$venv/bin/pip" install -q matplotlib || echo "bench-compare: could not install matplotlib; no chart"
fi
"$venv/bin/python" "$here/chart.py" "$work/chart.json" "$out.png" || echo "bench-compare: the chart failed"
echo "wrote $out.csv (rows appended), $out.md and $out.png"
