#!/usr/bin/env bash
# Several nodes on one PostgreSQL database, 1 node against 3 (every node a `picloud serve` process
# on this machine, each case on a fresh database made with CREATE DATABASE):
#   triggers  EVENTS events published by a handler (bench/triggers/app), BATCH per request; with 3
#             nodes every node publishes EVENTS/3 at once: deliveries/s until every node's
#             picloud_trigger_deliveries_total adds up to EVENTS, and the start latency p50/p99 of
#             the histograms of all nodes merged; then STEADY_EVENTS more at STEADY_RATE per second,
#             one publish per request, round robin over the nodes (start latency without a queue).
#   realtime  SUBSCRIBERS SSE subscribers on node 1 (bench/realtime/app), events published through
#             node 2 (the same node with 1 node) by `realtime-bench client --publish-port`: publish →
#             receive latency p50/p99 and delivered events/s, at a steady RATE, then back to back.
# Env: PICLOUD_TEST_DATABASE_URL  the PostgreSQL server (scripts/with-postgres.sh sets it; make bench-cluster)
#      EVENTS=20000  BATCH=1000 (events per publishing request)  CONCURRENCY=8 (handlers at once per
#      node: PICLOUD_DISPATCHER_CONCURRENCY)  STEADY_EVENTS=2000  STEADY_RATE=500
#      SUBSCRIBERS=1000  M=200 (events per pass)  RATE=20 (steady publishes/s)  CLIENT_THREADS=1
#      DELIVERY_TIMEOUT=300 (seconds to wait for the trigger deliveries)
# Results: bench/results/cluster-<date>.{csv,md}.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
source bench/lib.sh
DB_URL=${PICLOUD_TEST_DATABASE_URL:-}
if [ -z "$DB_URL" ]; then
  echo "PICLOUD_TEST_DATABASE_URL is not set: run scripts/with-postgres.sh bench/cluster/run.sh (or make bench-cluster)" >&2
  exit 1
fi
for product in picloud realtime-bench; do
  log=$(swift_release build --product "$product" 2>&1) || { echo "$log"; echo "release build of $product failed" >&2; exit 1; }
done
EVENTS=${EVENTS:-20000}
STEADY_EVENTS=${STEADY_EVENTS:-2000}
STEADY_RATE=${STEADY_RATE:-500}
CONCURRENCY=${CONCURRENCY:-8}
BATCH=${BATCH:-1000}
SUBSCRIBERS=${SUBSCRIBERS:-1000}
M=${M:-200}
RATE=${RATE:-20}
CLIENT_THREADS=${CLIENT_THREADS:-1}
DELIVERY_TIMEOUT=${DELIVERY_TIMEOUT:-300}
HEARTBEAT_SEC=30
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((SUBSCRIBERS + 100)) ] || echo "warning: $(ulimit -n) open files is too few for $SUBSCRIBERS subscribers"
# Every node: the same master key and admin token, the same dispatcher settings.
export PICLOUD_MASTER_KEY
PICLOUD_MASTER_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
export PICLOUD_ADMIN_TOKEN
PICLOUD_ADMIN_TOKEN=pc_$(python3 -c 'import secrets; print(secrets.token_hex(16))')
export PICLOUD_DISPATCHER_CONCURRENCY=$CONCURRENCY PICLOUD_REALTIME_HEARTBEAT_SEC=$HEARTBEAT_SEC
date=$(date -u +%F)
out=bench/results/cluster-$date
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

pg_version=$(psql "$DB_URL" -Atc "SHOW server_version")
pg_settings=$(psql "$DB_URL" -Atc "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings
  WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'max_connections')")
echo "PostgreSQL $pg_version ($pg_settings), $(nproc) cores"

fresh_database() { # name -> its URL (a new database on the server of $DB_URL)
  psql "$DB_URL" -qc "CREATE DATABASE $1" >/dev/null
  python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$DB_URL" "$1"
}

start_cluster() { # name nodes app → $database, pids[], ports[]; node 1 deploys the app, the others load it at start
  local name=$1 count=$2 app=$3 i
  database=bench_${name//-/_}_$$
  local url
  url=$(fresh_database "$database")
  pids=(); ports=()
  for i in $(seq "$count"); do
    local deploy=()
    [ "$i" -eq 1 ] && deploy=(--deploy "$app")
    start_picloud "$work/$name-node$i.log" "$work/$name-data$i" --database-url "$url" "${deploy[@]}" --log-level notice
    pids+=("$server"); ports+=("$port")
  done
}

stop_cluster() { # name: stops the nodes, drops the database, keeps the log lines at warning and above
  local pid i
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  psql "$DB_URL" -qc "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1 || true
  for i in $(seq ${#pids[@]}); do
    grep -E '^\S+ (warning|error|critical) ' "$work/$1-node$i.log" | sed "s/^/node $i: /" >> "$work/$1-problems.log" || true
  done
  touch "$work/$1-problems.log"
}

scrape() { # prefix: every node's /metrics → prefix-node<i>.txt
  local i
  for i in "${!ports[@]}"; do curl -sf "http://127.0.0.1:${ports[$i]}/metrics" > "$1-node$((i + 1)).txt"; done
}

# Sums every sample over the files, minus those after --minus: OUT FILE... [--minus FILE...]
merge_metrics() {
  python3 - "$@" <<'PY'
import sys
out, sign, totals = sys.argv[1], 1, {}
for name in sys.argv[2:]:
    if name == "--minus":
        sign = -1
        continue
    for line in open(name).read().splitlines():
        series, _, value = line.rpartition(" ")
        if not series or line.startswith("#"):
            continue
        try:
            totals[series] = totals.get(series, 0.0) + sign * float(value)
        except ValueError:
            pass
open(out, "w").write("".join(f"{series} {value:.15g}\n" for series, value in totals.items()))
PY
}

sum_metric() { # name: the sum over every node right now
  local i
  for i in "${!ports[@]}"; do curl -sf "http://127.0.0.1:${ports[$i]}/metrics" || true; done \
    | awk -v name="$1" '$1 == name {sum += $2} END {printf "%d\n", sum}'
}

value_of() { awk -v name="$2" '$1 == name {printf "%d", $2}' "$1"; } # metrics file, name

triggers_case() { # nodes → $work/triggers-<nodes>.json
  local n=$1 name=triggers-$1 t0 t1 t2 d1 delivered=0
  echo "triggers, $n node(s): $EVENTS events"
  start_cluster "$name" "$n" bench/triggers/app
  t0=$(date +%s.%N)
  # Each node's share in requests of BATCH events (a handler has 10 s), the nodes at once.
  python3 - "$EVENTS" "$BATCH" "${ports[@]}" <<'PY' || { echo "publishing failed; node logs:"; cat "$work/$name"-node*.log; exit 1; }
import http.client, sys, threading
events, batch, ports = int(sys.argv[1]), int(sys.argv[2]), [int(p) for p in sys.argv[3:]]
failures = []
def publish(port, count):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while count > 0:
        n = min(batch, count)
        connection.request("POST", f"/apps/tbench/api/publish/{n}")
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            failures.append(f"port {port}: HTTP {response.status} {body[:300]!r}")
            return
        count -= n
shares = [events // len(ports)] * len(ports)
shares[-1] += events - sum(shares)
threads = [threading.Thread(target=publish, args=(port, share)) for port, share in zip(ports, shares)]
for thread in threads: thread.start()
for thread in threads: thread.join()
if failures: sys.exit("\n".join(failures))
PY
  t1=$(date +%s.%N)
  d1=$(sum_metric picloud_trigger_deliveries_total)
  local deadline=$((SECONDS + DELIVERY_TIMEOUT))
  while :; do
    delivered=$(sum_metric picloud_trigger_deliveries_total)
    [ "$delivered" -ge "$EVENTS" ] && break
    [ $SECONDS -gt $deadline ] && { echo "  timed out: $delivered of $EVENTS delivered"; break; }
    sleep 0.1
  done
  t2=$(date +%s.%N)
  sleep 2 # late duplicates would show here
  scrape "$work/$name-burst"
  merge_metrics "$work/$name-burst.txt" "$work/$name-burst"-node*.txt
  read -r p50 p99 <<<"$(quantiles "$work/$name-burst.txt" picloud_trigger_start_latency_seconds)"
  local by_node=() f
  for f in "$work/$name-burst"-node*.txt; do by_node+=("$(value_of "$f" picloud_trigger_deliveries_total)"); done

  # Steady: one publish per request, round robin over the nodes.
  python3 - "$STEADY_EVENTS" "$STEADY_RATE" "${ports[@]}" <<'PY'
import http.client, sys, time
events, rate, ports = int(sys.argv[1]), float(sys.argv[2]), [int(p) for p in sys.argv[3:]]
connections = [http.client.HTTPConnection("127.0.0.1", port) for port in ports]
start = time.monotonic()
for i in range(events):
    connection = connections[i % len(connections)]
    connection.request("POST", "/apps/tbench/api/publish/1")
    response = connection.getresponse()
    response.read()
    if response.status != 200: sys.exit(f"publish: HTTP {response.status}")
    delay = start + (i + 1) / rate - time.monotonic()
    if delay > 0: time.sleep(delay)
PY
  local target=$((EVENTS + STEADY_EVENTS))
  deadline=$((SECONDS + 60))
  until [ "$(sum_metric picloud_trigger_deliveries_total)" -ge "$target" ] || [ $SECONDS -gt $deadline ]; do sleep 0.1; done
  sleep 1
  scrape "$work/$name-steady"
  merge_metrics "$work/$name-all.txt" "$work/$name-steady"-node*.txt
  merge_metrics "$work/$name-steady.txt" "$work/$name-steady"-node*.txt --minus "$work/$name-burst"-node*.txt
  read -r sp50 sp99 <<<"$(quantiles "$work/$name-steady.txt" picloud_trigger_start_latency_seconds)"
  stop_cluster "$name"
  python3 - "$work/$name.json" "$EVENTS" "$STEADY_EVENTS" "$t0" "$t1" "$t2" "$d1" "$p50" "$p99" "$sp50" "$sp99" \
    "$work/$name-burst.txt" "$work/$name-all.txt" "${by_node[*]}" <<'PY'
import json, sys
path, events, steady_events = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t0, t1, t2, d1 = (float(v) for v in sys.argv[4:8])
p50, p99, sp50, sp99 = sys.argv[8:12]
def metrics(name):
    values = {}
    for line in open(name).read().splitlines():
        series, _, value = line.rpartition(" ")
        values[series] = float(value)
    return values
burst, final = metrics(sys.argv[12]), metrics(sys.argv[13])
delivered = int(burst.get("picloud_trigger_deliveries_total", 0))
left = events - d1
result = {
    "overall_per_s": events / (t2 - t0),
    "publish_per_s": events / (t1 - t0),
    # As bench/triggers/run.sh: the backlog left when publishing ended, over the time it took (n/a under 10%).
    "backlog_per_s": left / max(t2 - t1, 1e-9) if left >= events / 10 else None,
    "left_after_publish": int(left),
    "p50_ms": float(p50), "p99_ms": float(p99), "steady_p50_ms": float(sp50), "steady_p99_ms": float(sp99),
    "delivered": delivered, "extra_deliveries": delivered - events,
    "final_delivered": int(final.get("picloud_trigger_deliveries_total", 0)), "final_expected": events + steady_events,
    "failures": int(final.get("picloud_trigger_failures_total", 0)), "retries": int(final.get("picloud_trigger_retries_total", 0)),
    "outbox_left": int(final.get("picloud_outbox_depth", 0)),
    "by_node": [int(v) for v in sys.argv[14].split()],
}
json.dump(result, open(path, "w"))
print(f"  {result['overall_per_s']:.0f} deliveries/s overall, published in {t1 - t0:.2f}s, start latency p50 ≤ {p50} ms, p99 ≤ {p99} ms; "
      f"steady: p50 ≤ {sp50} ms, p99 ≤ {sp99} ms; by node {result['by_node']}, {result['extra_deliveries']} extra, outbox left {result['outbox_left']}")
PY
}

realtime_case() { # nodes → $work/realtime-<nodes>.json
  local n=$1 name=realtime-$1
  start_cluster "$name" "$n" bench/realtime/app
  local publish_node=$((n > 1 ? 2 : 1))
  echo "realtime, $n node(s): $SUBSCRIBERS subscribers on node 1, $M events per pass published through node $publish_node:"
  .build/release/realtime-bench client --port "${ports[0]}" --pid "${pids[0]}" --publish-port "${ports[$((publish_node - 1))]}" \
    --subscribers "$SUBSCRIBERS" --events "$M" --rate "$RATE" --threads "$CLIENT_THREADS" > "$work/$name.json" \
    || { echo "client failed; node logs:"; cat "$work/$name"-node*.log; exit 1; }
  scrape "$work/$name-end"
  merge_metrics "$work/$name-end.txt" "$work/$name-end"-node*.txt
  stop_cluster "$name"
}

for n in 1 3; do
  triggers_case "$n"
  realtime_case "$n"
done

python3 - "$work" "$out" "$date" "$(nproc)" "$pg_version" "$pg_settings" "$EVENTS" "$STEADY_EVENTS" "$STEADY_RATE" "$CONCURRENCY" \
  "$SUBSCRIBERS" "$M" "$RATE" "$CLIENT_THREADS" "$(lscpu | sed -n 's/^Model name: *//p')" "$BATCH" <<'PY'
import json, sys
work, out, date, cores, pg_version, pg_settings = sys.argv[1:7]
events, steady_events, steady_rate, concurrency, subscribers, m, rate, threads = sys.argv[7:15]
cpu, batch = sys.argv[15:17]
trig = {n: json.load(open(f"{work}/triggers-{n}.json")) for n in (1, 3)}
rt = {n: json.load(open(f"{work}/realtime-{n}.json")) for n in (1, 3)}
problems = {case: open(f"{work}/{case}-problems.log").read().splitlines() for case in ("triggers-1", "triggers-3", "realtime-1", "realtime-3")}

def rtmetric(n, name, node=None):
    """A metric at the end of the realtime case: summed over the nodes, or of one node."""
    path = f"{work}/realtime-{n}-end.txt" if node is None else f"{work}/realtime-{n}-end-node{node}.txt"
    for line in open(path).read().splitlines():
        if line.rpartition(" ")[0] == name:
            return int(float(line.rpartition(" ")[2]))
    return 0

def by_node(n, name):
    return " / ".join(str(rtmetric(n, name, node)) for node in range(1, n + 1))

# (label, value of (triggers result, realtime result), format, csv column)
rows = [
    ("triggers: deliveries/s overall (first publish → last delivery)", lambda t, r: t["overall_per_s"], "{:.0f}", "trigger_overall_per_s"),
    ("triggers: deliveries/s backlog (after publishing ended)", lambda t, r: t["backlog_per_s"], "{:.0f}", "trigger_backlog_per_s"),
    ("triggers: events published/s", lambda t, r: t["publish_per_s"], "{:.0f}", "trigger_publish_per_s"),
    ("triggers: start latency p50, burst (ms, ≤)", lambda t, r: t["p50_ms"], "{:g}", "trigger_p50_ms_le"),
    ("triggers: start latency p99, burst (ms, ≤)", lambda t, r: t["p99_ms"], "{:g}", "trigger_p99_ms_le"),
    (f"triggers: start latency p50, steady {steady_rate}/s (ms, ≤)", lambda t, r: t["steady_p50_ms"], "{:g}", "trigger_steady_p50_ms_le"),
    (f"triggers: start latency p99, steady {steady_rate}/s (ms, ≤)", lambda t, r: t["steady_p99_ms"], "{:g}", "trigger_steady_p99_ms_le"),
    ("SSE steady: delivered events/s", lambda t, r: r["steady"]["delivered_per_s"], "{:.0f}", "sse_steady_per_s"),
    ("SSE steady: publish → receive p50 (ms)", lambda t, r: r["steady"]["p50_ms"], "{:.2f}", "sse_steady_p50_ms"),
    ("SSE steady: publish → receive p99 (ms)", lambda t, r: r["steady"]["p99_ms"], "{:.2f}", "sse_steady_p99_ms"),
    ("SSE steady: CPU of the subscribers' node (s)", lambda t, r: r["steady"]["server_cpu_s"], "{:.2f}", "sse_steady_node1_cpu_s"),
    ("SSE burst: delivered events/s (peak)", lambda t, r: r["burst"]["delivered_per_s"], "{:.0f}", "sse_burst_per_s"),
    ("SSE burst: publishing took (s)", lambda t, r: r["burst"]["publish_s"], "{:.3f}", "sse_burst_publish_s"),
    ("SSE burst: publish → receive p50 (ms)", lambda t, r: r["burst"]["p50_ms"], "{:.2f}", "sse_burst_p50_ms"),
    ("SSE burst: publish → receive p99 (ms)", lambda t, r: r["burst"]["p99_ms"], "{:.2f}", "sse_burst_p99_ms"),
    ("SSE burst: CPU of the subscribers' node (s)", lambda t, r: r["burst"]["server_cpu_s"], "{:.2f}", "sse_burst_node1_cpu_s"),
]

def fmt(f, v):
    return "n/a" if v is None else f.format(v)

def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "n/a"

with open(out + ".csv", "w") as csv:
    csv.write("nodes," + ",".join(column for *_, column in rows) + ",trigger_extra_deliveries,trigger_outbox_left,sse_missing,sse_gaps\n")
    for n in (1, 3):
        t, r = trig[n], rt[n]
        missing = sum(r[p]["expected"] - r[p]["delivered"] for p in ("steady", "burst"))
        gaps = sum(r[p]["gaps"] for p in ("steady", "burst"))
        csv.write(f"{n}," + ",".join("" if v(t, r) is None else f"{v(t, r):g}" for _, v, _, _ in rows)
                  + f",{t['extra_deliveries']},{t['outbox_left']},{missing},{gaps}\n")
    csv.write("ratio_3_to_1," + ",".join(ratio(v(trig[3], rt[3]), v(trig[1], rt[1])) for _, v, _, _ in rows) + ",,,,\n")

md = [f"# PiCloud on PostgreSQL, 1 node and 3 nodes ({date})", ""]
md.append(
    f"`scripts/with-postgres.sh bench/cluster/run.sh` (`make bench-cluster`): release build; one machine with {cores} cores ({cpu}) running every node, "
    f"PostgreSQL {pg_version} and the load generators. PostgreSQL is the private test server of scripts/with-postgres.sh: **fsync is off** "
    f"({pg_settings}) — commits never wait for the disk, so these figures are an upper bound for a durable server, and they are not comparable "
    "with the SQLite figures of the triggers benchmark (synchronous=full). The nodes are `picloud serve --database-url` processes sharing one "
    "database (a fresh one per case, `CREATE DATABASE`), the same `PICLOUD_MASTER_KEY` and `PICLOUD_ADMIN_TOKEN`; node 1 deploys the app, the "
    "others load it at start. Three nodes on two cores share the CPU with each other and with PostgreSQL: this measures what running several "
    "nodes costs and whether the LISTEN/NOTIFY paths work under load, not how a cluster of machines scales."
)
md.append("")
md.append(
    f"**Triggers** (`bench/triggers/app`, `PICLOUD_DISPATCHER_CONCURRENCY={concurrency}` on every node): {events} events published by a handler "
    f"(`POST /apps/tbench/api/publish/N`, N = {batch}: one transaction per `pubsub.publish`, requests one after the other since a handler has 10 s), "
    "to a topic trigger whose handler does nothing. With 3 nodes every node publishes a third at the same time, so events come from every node "
    f"and any node may deliver them. *Overall* = {events} / (last delivery − first publish), the deliveries being the sum of "
    "`picloud_trigger_deliveries_total` over every node's `/metrics` (polled every 0.1 s); *backlog* = deliveries left when publishing ended / the time they took (n/a when fewer than 10% were left). Start latency = event due → "
    "handler start, from the `picloud_trigger_start_latency_seconds` histograms of **all nodes merged** (buckets summed; the value is the upper bound "
    "of the bucket that holds the quantile). In the burst it mostly measures the queue; the steady line measures the reaction time: "
    f"{steady_events} more events at {steady_rate} per second, one publish per request, round robin over the nodes (histogram after minus before). "
    "The benchmark's topic is not registered (no [[topics]] entry), so a node's publishes to it do not take turns (only a registered topic's do, "
    "to keep its ids in order for the node's subscribers); each request still publishes its events one after the other."
)
md.append("")
md.append(
    f"**Realtime** (`bench/realtime/app`, `PICLOUD_REALTIME_HEARTBEAT_SEC=30`): `realtime-bench client` opens {subscribers} SSE subscribers on node 1 "
    f"and publishes through node 2 (`--publish-port`; with 1 node, through node 1), {m} events per pass, one `POST /apps/rtbench/api/publish` each "
    f"with the send time: first at {rate} per second (*steady*), then back to back (*burst*). With 3 nodes an event reaches the subscribers through "
    "PostgreSQL NOTIFY (node 2 commits, node 1 hears it and fans it out); node 3 only listens. Latency = receive − send time at each subscriber; "
    f"delivered events/s = events received / (last receipt − first publish); CPU = node 1's user + system time during the pass. Client: {threads} "
    "event loop(s), same machine."
)
md.append("")
md.append("Ratio = 3 nodes / 1 node: above 1 is more (better for events/s, worse for latency and CPU). Latencies marked ≤ are histogram bucket bounds.")
md += ["", "| | 1 node | 3 nodes | 3 nodes / 1 node |", "|---|---|---|---|"]
for label, value, f, _ in rows:
    a, b = value(trig[1], rt[1]), value(trig[3], rt[3])
    md.append(f"| {label} | {fmt(f, a)} | {fmt(f, b)} | {ratio(b, a)} |")
md += ["", "Checks:", ""]
for n in (1, 3):
    t, r = trig[n], rt[n]
    missing = sum(r[p]["expected"] - r[p]["delivered"] for p in ("steady", "burst"))
    gaps = sum(r[p]["gaps"] for p in ("steady", "burst"))
    md.append(
        f"- {n} node(s): triggers delivered {t['delivered']} of {events} in the burst ({t['extra_deliveries']} extra), {t['final_delivered']} of "
        f"{t['final_expected']} at the end, deliveries by node {' / '.join(map(str, t['by_node']))}, {t['failures']} failed runs, outbox left "
        f"{t['outbox_left']}; SSE {missing} events missing, {gaps} gap frames, {r['connect_failures']} failed connections, "
        f"{rtmetric(n, 'picloud_realtime_replayed_events_total')} events replayed from the history, endpoint requests (publishes) by node "
        f"{by_node(n, 'picloud_endpoint_requests_total')}, events written to subscribers by node "
        f"{by_node(n, 'picloud_realtime_events_delivered_total')}; node log lines at warning or above: "
        f"triggers {len(problems[f'triggers-{n}'])}, realtime {len(problems[f'realtime-{n}'])}."
    )
open(out + ".md", "w").write("\n".join(md) + "\n")
for case, lines in problems.items():
    if lines:
        print(f"{case}: {len(lines)} log lines at warning or above, the first ones:")
        print("\n".join("  " + line[:300] for line in lines[:10]))
PY
cat "$out.md"
echo "wrote $out.csv and $out.md"
