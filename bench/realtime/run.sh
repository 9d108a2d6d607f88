#!/usr/bin/env bash
# Realtime (Server-Sent Events) benchmark: N subscribers on one topic, M events published one
# HTTP request each, first at a steady rate, then back to back (burst). Measures delivered
# events/s, publish → receive latency p50/p99/max, gap frames, and the server's resident memory
# per idle subscriber. Baseline from the same run: a bare SwiftNIO server doing the same fan-out
# (`realtime-bench baseline-server`: no Lua, no database). Client: `realtime-bench client`.
#   SUBSCRIBERS="1000 10000"  subscriber counts to run
#   M                          events per pass (default 200 below 5,000 subscribers, 50 from there)
#   RATE                       publishes per second in the steady pass (default 20 below 5,000
#                              subscribers, 5 from there: 50,000 deliveries/s, which the 2 cores
#                              sustain with the client on them too)
#   CLIENT_THREADS=1           event loops of the client (it shares the cores with the server)
# Results: bench/results/realtime-<date>.{csv,md}.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
source bench/lib.sh
swift_release build --product picloud >/dev/null
swift_release build --product realtime-bench >/dev/null
SUBSCRIBERS=${SUBSCRIBERS:-1000 10000}
CLIENT_THREADS=${CLIENT_THREADS:-1}
HEARTBEAT_SEC=30
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "open files limit: $(ulimit -n) (each process needs one per subscriber)"
date=$(date -u +%F)
out=bench/results/realtime-$date
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

events_for() { if [ -n "${M:-}" ]; then echo "$M"; elif [ "$1" -lt 5000 ]; then echo 200; else echo 50; fi; }
rate_for() { if [ -n "${RATE:-}" ]; then echo "$RATE"; elif [ "$1" -lt 5000 ]; then echo 20; else echo 5; fi; }

start_baseline() { # log
  .build/release/realtime-bench baseline-server 2>"$1" &
  server=$!
  for _ in $(seq 100); do
    port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$1" | grep -o '[0-9]*$' || true)
    [ -n "$port" ] && return 0
    sleep 0.1
  done
  echo "baseline server did not start:"; cat "$1"; exit 1
}

run_client() { # name subscribers events log [client flags...] -> $work/name-subscribers.json
  local name=$1 n=$2 m=$3 log=$4
  shift 4
  echo "$name, $n subscribers, $m events per pass:"
  .build/release/realtime-bench client --port "$port" --pid "$server" --subscribers "$n" --events "$m" \
    --rate "$(rate_for "$n")" --threads "$CLIENT_THREADS" "$@" > "$work/$name-$n.json" \
    || { echo "client failed; server log:"; cat "$log"; exit 1; }
  kill $server; wait $server 2>/dev/null || true
}

for n in $SUBSCRIBERS; do
  [ "$(ulimit -n)" -gt $((n + 100)) ] || echo "warning: $(ulimit -n) open files is too few for $n subscribers"
  m=$(events_for "$n")
  rate_for "$n" > "$work/rate-$n"
  # Every subscriber comes from 127.0.0.1: lift the per-client stream limit (5,000 by default).
  PICLOUD_REALTIME_HEARTBEAT_SEC=$HEARTBEAT_SEC PICLOUD_REALTIME_MAX_SUBSCRIBERS_PER_CLIENT=100000 \
    start_picloud "$work/picloud-$n.log" "$work/data-$n" --deploy bench/realtime/app --log-level notice
  run_client picloud "$n" "$m" "$work/picloud-$n.log"
  start_baseline "$work/baseline-$n.log"
  run_client baseline "$n" "$m" "$work/baseline-$n.log" --count-path /count --count-metric ""
done

python3 - "$work" "$out" "$date" "${RATE:-per N}" "$CLIENT_THREADS" "$(nproc)" "$HEARTBEAT_SEC" $SUBSCRIBERS <<'PY'
import json, sys
work, out, date, rate, threads, cores, heartbeat = sys.argv[1:8]
counts = [int(n) for n in sys.argv[8:]]
runs = {(name, n): json.load(open(f"{work}/{name}-{n}.json")) for n in counts for name in ("picloud", "baseline")}
rates = {n: open(f"{work}/rate-{n}").read().strip() for n in counts}

def ratio(a, b):
    return f"{a / b:.2f}" if b else "n/a"

def missing(run):
    return sum(run[p]["expected"] - run[p]["delivered"] for p in ("steady", "burst"))

def gaps(run):
    return sum(run[p]["gaps"] for p in ("steady", "burst"))

# (label, value of a run, format, whether a ratio means anything)
rows = [
    ("server RSS per idle subscriber (KiB)", lambda r: r["rss_per_subscriber_kib"], "{:.1f}", True),
    ("steady: delivered events/s", lambda r: r["steady"]["delivered_per_s"], "{:.0f}", True),
    ("steady: latency p50 (ms)", lambda r: r["steady"]["p50_ms"], "{:.2f}", True),
    ("steady: latency p99 (ms)", lambda r: r["steady"]["p99_ms"], "{:.2f}", True),
    ("steady: latency max (ms)", lambda r: r["steady"]["max_ms"], "{:.2f}", True),
    ("steady: server CPU (s)", lambda r: r["steady"]["server_cpu_s"], "{:.2f}", True),
    ("steady: client CPU (s)", lambda r: r["steady"]["client_cpu_s"], "{:.2f}", False),
    ("burst: delivered events/s (peak)", lambda r: r["burst"]["delivered_per_s"], "{:.0f}", True),
    ("burst: publishing took (s)", lambda r: r["burst"]["publish_s"], "{:.3f}", True),
    ("burst: latency p50 (ms)", lambda r: r["burst"]["p50_ms"], "{:.2f}", True),
    ("burst: latency p99 (ms)", lambda r: r["burst"]["p99_ms"], "{:.2f}", True),
    ("burst: latency max (ms)", lambda r: r["burst"]["max_ms"], "{:.2f}", True),
    ("burst: server CPU (s)", lambda r: r["burst"]["server_cpu_s"], "{:.2f}", True),
    ("burst: client CPU (s)", lambda r: r["burst"]["client_cpu_s"], "{:.2f}", False),
    ("gap frames", gaps, "{}", False),
    ("events missing (timed out)", missing, "{}", False),
    ("subscribers failed to connect / streams ended early", lambda r: f'{r["connect_failures"]} / {r["streams_ended"] + r["stream_errors"]}', "{}", False),
    ("connecting all subscribers took (s)", lambda r: r["connect_s"], "{:.2f}", False),
]

with open(out + ".csv", "w") as csv:
    csv.write("subscribers,events,rate,server,rss_per_subscriber_kib,steady_per_s,steady_p50_ms,steady_p99_ms,steady_max_ms,"
              "burst_per_s,burst_p50_ms,burst_p99_ms,burst_max_ms,gaps,missing,connect_failures,steady_server_cpu_s,burst_server_cpu_s\n")
    for n in counts:
        for name in ("picloud", "baseline"):
            r = runs[(name, n)]
            s, b = r["steady"], r["burst"]
            csv.write(f'{n},{s["events"]},{rates[n]},{name},{r["rss_per_subscriber_kib"]},{s["delivered_per_s"]:.0f},{s["p50_ms"]},{s["p99_ms"]},{s["max_ms"]},'
                      f'{b["delivered_per_s"]:.0f},{b["p50_ms"]},{b["p99_ms"]},{b["max_ms"]},{gaps(r)},{missing(r)},{r["connect_failures"]},'
                      f'{s["server_cpu_s"]},{b["server_cpu_s"]}\n')
        p, b = runs[("picloud", n)], runs[("baseline", n)]
        csv.write(f'{n},{p["steady"]["events"]},{rates[n]},ratio,{ratio(p["rss_per_subscriber_kib"], b["rss_per_subscriber_kib"])},'
                  f'{ratio(p["steady"]["delivered_per_s"], b["steady"]["delivered_per_s"])},{ratio(p["steady"]["p50_ms"], b["steady"]["p50_ms"])},'
                  f'{ratio(p["steady"]["p99_ms"], b["steady"]["p99_ms"])},{ratio(p["steady"]["max_ms"], b["steady"]["max_ms"])},'
                  f'{ratio(p["burst"]["delivered_per_s"], b["burst"]["delivered_per_s"])},{ratio(p["burst"]["p50_ms"], b["burst"]["p50_ms"])},'
                  f'{ratio(p["burst"]["p99_ms"], b["burst"]["p99_ms"])},{ratio(p["burst"]["max_ms"], b["burst"]["max_ms"])},,,,,\n')

md = [f"# Realtime (Server-Sent Events) benchmark ({date})", ""]
md.append(
    f"`bench/realtime/run.sh` (SUBSCRIBERS=\"{' '.join(map(str, counts))}\" RATE={rate} CLIENT_THREADS={threads}): release build, {cores} cores shared by "
    f"the server and the client. For each N, a fresh PiCloud (new data directory, `PICLOUD_REALTIME_HEARTBEAT_SEC={heartbeat}`) with the app "
    "`bench/realtime/app`; the client (`realtime-bench client`, SwiftNIO, "
    f"{threads} event loop(s)) opens N `GET /apps/rtbench/realtime/bench` streams (250 connections at a time), waits until the server's "
    "`picloud_realtime_subscribers` gauge shows all N, waits 2 s, and reads the server's VmRSS: memory per idle subscriber = "
    "(VmRSS after − VmRSS before subscribing) / N. Then it publishes M events, one `POST /apps/rtbench/api/publish` each (a Lua handler "
    "calling `pubsub.publish`; one keep-alive connection, each request waiting for its answer) with body `{\"t\": send time}`, first at a "
    f"steady rate (20 per second below 5,000 subscribers, 5 from there, unless RATE is set), then back to back (*burst*), and waits after each pass until every subscriber has every event (60 s at most). "
    "Latency = receive time − send time of each event at each subscriber (CLOCK_REALTIME, µs, same machine; the receive time is taken "
    "once per socket read); delivered events/s = events received / (last receipt − first publish). Gap frames are `event: gap` frames "
    "(a subscriber fell behind); server and client CPU are each process's user + system time during the pass (the client's share of the cores is time the server did not have)."
)
md.append("")
md.append(
    "Baseline from the same run: `realtime-bench baseline-server`, a bare SwiftNIO HTTP/1.1 server (2 event loops, no Lua, no "
    "database, no history) answering the same subscribe request with the same head and `retry:` line, and on each publish writing one "
    "frame of PiCloud's shape, built once, to every open stream on the stream's own event loop. Same client, same N, M and rate. "
    "Ratio = PiCloud / baseline (above 1 is more: better for events/s, worse for latency, memory and CPU)."
)
for n in counts:
    p, b = runs[("picloud", n)], runs[("baseline", n)]
    md += ["", f"## {n} subscribers, {p['steady']['events']} events per pass, steady pass at {rates[n]} per second", "",
           "| | PiCloud | baseline | PiCloud / baseline |", "|---|---|---|---|"]
    for label, value, fmt, has_ratio in rows:
        pv, bv = value(p), value(b)
        md.append(f"| {label} | {fmt.format(pv)} | {fmt.format(bv)} | {ratio(pv, bv) if has_ratio else ''} |")

goal_n = 10000
md += [""]
if (("picloud", goal_n)) in runs:
    r = runs[("picloud", goal_n)]
    p99, kib = r["steady"]["p99_ms"], r["rss_per_subscriber_kib"]
    complete = missing(r) == 0 and gaps(r) == 0 and r["connect_failures"] == 0
    met = complete and p99 < 100 and kib < 20
    md.append(f"Goal on this {cores}-core machine: 10,000 subscribers, p99 < 100 ms (steady pass), < 20 KiB per idle subscriber, every event "
              f"delivered without gaps. **{'Met' if met else 'Not met'}**: p99 {p99:.2f} ms, {kib:.1f} KiB per subscriber, "
              f"{missing(r)} events missing, {gaps(r)} gap frames, {r['connect_failures']} failed connections.")
else:
    md.append(f"Goal on this {cores}-core machine: 10,000 subscribers, p99 < 100 ms, < 20 KiB per idle subscriber: not measured in this run "
              f"(largest N: {max(counts)}).")
open(out + ".md", "w").write("\n".join(md) + "\n")
PY
cat "$out.md"
echo "wrote $out.csv and $out.md"
