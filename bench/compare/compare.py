#!/usr/bin/env python3
"""Helpers of bench/compare/run.sh (Python standard library only).

  compare.py free-port                                  a free TCP port on 127.0.0.1
  compare.py wrk FILE                                   wrk --latency output → JSON (rps, p50_ms, p99_ms, errors)
  compare.py redis-csv FILE                             redis-benchmark --csv output → JSON
  compare.py procs PID                                  PID and its children (nginx master → workers)
  compare.py pss PID...                                 proportional set size of the processes, KiB, summed
  compare.py cpu PID...                                 CPU seconds (user + system) of the processes, summed
  compare.py wait-count URL METRIC N TIMEOUT_S          polls URL until the line "METRIC value" shows ≥ N
  compare.py wait-http URL TIMEOUT_S                    polls URL until it answers 2xx
  compare.py trigger PORT EVENTS WRITERS STEADY_EVENTS STEADY_RATE   → JSON
  compare.py trigger-paced PORT REALTIME_BENCH RATE SECONDS CONNECTIONS  → JSON
  compare.py cold-picloud BINARY APP_DIR REPEATS WORK   → JSON
  compare.py cold-nginx PREFIX REPEATS                  → JSON
  compare.py deploy-picloud PORT TOKEN APP_DIR REPEATS  → JSON
  compare.py deploy-nginx PREFIX PORT REPEATS           → JSON
  compare.py mark PID                                   "busy_s own_s wall_s": CPU time of the machine, of PID and its reaped children
  compare.py facts WORK                                 machine facts → JSON
  compare.py versions                                   versions of everything measured → JSON
  compare.py report WORK OUT_PREFIX                     rows → OUT_PREFIX.csv (appended), OUT_PREFIX.md, WORK/chart.json

Raw results come from run.sh as WORK/<workload>-<side>.json; extra KEY=VALUE arguments of wrk and
redis-csv are added to their JSON (numbers as numbers).
"""
import glob
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time


def out(value):
    print(json.dumps(value))


def load(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


# ---------------------------------------------------------------- small tools

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_wrk(path):
    text = open(path).read()

    def ms(v):
        n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
        return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not rps:
        sys.exit(f"no Requests/sec in wrk output:\n{text}")
    result = {
        "rps": float(rps.group(1)),
        "p50_ms": ms(re.search(r"^\s*50%\s+(\S+)", text, re.M).group(1)),
        "p99_ms": ms(re.search(r"^\s*99%\s+(\S+)", text, re.M).group(1)),
        "requests": int(re.search(r"(\d+) requests in", text).group(1)),
        "non2xx": 0,
        "socket_errors": "",
    }
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if bad:
        result["non2xx"] = int(bad.group(1))
    errors = re.search(r"Socket errors: (.*)", text)
    if errors:
        result["socket_errors"] = errors.group(1).strip()
    return result


def combine_rounds(work, workload, rounds, first="picloud", peer="nginx"):
    """Rounds of PiCloud and its peer back to back: each side's figures are those of its median
    round (by requests/s); the ratio is the median of the rounds' ratios, each of two runs made
    minutes apart at most, so that a slow spell of the machine weighs on both sides of a ratio."""
    sides = {}
    for side in (first, peer):
        runs = [load(f"{work}/{workload}-{side}-{r}.json") for r in range(1, rounds + 1)]
        if any(run is None for run in runs):
            return
        sides[side] = runs
        median = sorted(runs, key=lambda run: run["rps"])[(len(runs) - 1) // 2]
        with open(f"{work}/{workload}-{side}.json", "w") as f:
            json.dump({**median, "rounds_rps": [run["rps"] for run in runs]}, f)
    ratios = [p["rps"] / n["rps"] for p, n in zip(sides[first], sides[peer])]
    with open(f"{work}/{workload}-rounds.json", "w") as f:
        json.dump({"ratios": ratios, "ratio": sorted(ratios)[(len(ratios) - 1) // 2]}, f)


def parse_redis_csv(path):
    lines = [l for l in open(path).read().splitlines() if l.startswith('"')]
    header = [h.strip('"') for h in lines[0].split('","')]
    values = [v.strip('"') for v in lines[1].split('","')]
    row = dict(zip(header, values))
    return {"rps": float(row["rps"]), "p50_ms": float(row["p50_latency_ms"]), "p99_ms": float(row["p99_latency_ms"])}


def proc_stats():
    """(pid, fields after the command name) of every process in /proc/*/stat."""
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = open(stat).read()
        except OSError:
            continue
        yield int(stat.split("/")[2]), text[text.rfind(")") + 2:].split()


def children(pid):
    return [child for child, fields in proc_stats() if int(fields[1]) == pid]


def pss_kib(pids):
    total = 0
    for pid in pids:
        for name, key in ((f"/proc/{pid}/smaps_rollup", "Pss:"), (f"/proc/{pid}/status", "VmRSS:")):
            try:
                for line in open(name):
                    if line.startswith(key):
                        total += int(line.split()[1])
                        raise StopIteration
            except StopIteration:
                break
            except OSError:
                continue
    return total


def cpu_seconds(pids):
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            text = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2:].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def http_get(host, port, path, timeout=5.0, method="GET", body=None, headers=None):
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def split_url(url):
    m = re.match(r"http://([^:/]+):(\d+)(/.*)", url)
    return m.group(1), int(m.group(2)), m.group(3)


def metric_value(text, name):
    """The value of metric `name` in a Prometheus or nchan status text; with no name, the body as one number."""
    if not name:
        try:
            return float(text.strip())
        except ValueError:
            return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def wait_count(url, metric, n, timeout):
    host, port, path = split_url(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, body = http_get(host, port, path)
            value = metric_value(body.decode(), metric)
            if value is not None and value >= n:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def poll_ok(host, port, path, deadline):
    """Polls until a 2xx answer (a new connection each try, 1 ms apart); the monotonic time of it, or None."""
    while time.monotonic() < deadline:
        try:
            status, _ = http_get(host, port, path, timeout=1.0)
            if 200 <= status < 300:
                return time.monotonic()
        except OSError:
            pass
        time.sleep(0.001)
    return None


def summary(samples):
    """median and max of a list of ms values (rounded)."""
    if not samples:
        return {"median": None, "max": None, "samples": []}
    return {"median": round(statistics.median(samples), 2), "max": round(max(samples), 2), "samples": [round(s, 2) for s in samples]}


# ---------------------------------------------------------------- histograms

def histogram(text, name):
    buckets = []
    for line in text.splitlines():
        if line.startswith(name + "_bucket"):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    return buckets


def histogram_diff(after, before):
    old = dict(before)
    return [(le, count - old.get(le, 0.0)) for le, count in after]


def quantile(buckets, q):
    """(estimate_ms, bucket_upper_bound_ms): linear inside the bucket, as Prometheus' histogram_quantile."""
    if not buckets or buckets[-1][1] <= 0:
        return None, None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return lower * 1000, None
            inside = count - below
            estimate = lower + (le - lower) * ((rank - below) / inside if inside > 0 else 1.0)
            return round(estimate * 1000, 3), le * 1000
        lower, below = le, count
    return None, None


# ---------------------------------------------------------------- trigger workload

def trigger(port, events, writers, steady_events, steady_rate):
    host = "127.0.0.1"
    base = "/apps/cmptrig/api"
    latency = "picloud_trigger_start_latency_seconds"

    def metrics():
        return http_get(host, port, "/metrics")[1].decode()

    def delivered(text=None):
        return metric_value(text or metrics(), "picloud_trigger_deliveries_total") or 0.0

    def wait_delivered(target, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if delivered() >= target:
                return time.monotonic()
            time.sleep(0.01)
        return None

    result = {"events": events, "writers": writers, "steady_events": steady_events, "steady_rate": steady_rate}

    # Steady: one kv.set per request at a fixed rate: the dispatcher's reaction time.
    before = metrics()
    d0 = delivered(before)
    connection = http.client.HTTPConnection(host, port, timeout=30)
    start = time.monotonic()
    errors = 0
    for i in range(steady_events):
        due = start + i / steady_rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        connection.request("POST", f"{base}/write/1?w=s")
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            errors += 1
    connection.close()
    done = wait_delivered(d0 + steady_events, 60)
    after = metrics()
    steady = histogram_diff(histogram(after, latency), histogram(before, latency))
    result["steady_write_errors"] = errors
    result["steady_complete"] = done is not None
    result["steady_p50_ms"], result["steady_p50_le_ms"] = quantile(steady, 0.5)
    result["steady_p99_ms"], result["steady_p99_le_ms"] = quantile(steady, 0.99)

    # Burst: WRITERS requests at once, each doing EVENTS/WRITERS kv.set calls (one commit each).
    before = metrics()
    d0 = delivered(before)
    per = events // writers
    total = per * writers
    statuses = []
    finished = []

    def write(w):
        status, body = http_get(host, port, f"{base}/write/{per}?w={w}", timeout=300, method="POST")
        statuses.append(status)
        finished.append(time.monotonic())

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    left_at_end = None
    while any(t.is_alive() for t in threads):
        time.sleep(0.01)
    t1 = max(finished) if finished else time.monotonic()
    left_at_end = d0 + total - delivered()
    t2 = wait_delivered(d0 + total, 120)
    after = metrics()
    burst = histogram_diff(histogram(after, latency), histogram(before, latency))
    result["burst_events"] = total
    result["burst_write_errors"] = sum(1 for s in statuses if s != 200)
    result["burst_complete"] = t2 is not None
    t2 = t2 or time.monotonic()
    result["writes_per_s"] = round(total / (t1 - t0))
    result["deliveries_per_s"] = round(total / (t2 - t0))
    # The dispatcher alone, on what was left when writing ended (when that was at least 10%).
    result["backlog_left"] = int(left_at_end)
    result["backlog_per_s"] = round(left_at_end / (t2 - t1)) if left_at_end >= total / 10 and t2 > t1 else None
    result["burst_p50_ms"], result["burst_p50_le_ms"] = quantile(burst, 0.5)
    result["burst_p99_ms"], result["burst_p99_le_ms"] = quantile(burst, 0.99)
    result["failures"] = (metric_value(after, "picloud_trigger_failures_total") or 0) - (metric_value(before, "picloud_trigger_failures_total") or 0)
    result["outbox_depth"] = metric_value(after, "picloud_outbox_depth")
    return result


def trigger_paced(port, binary, rate, seconds, connections):
    """One kv.set per request at a fixed RATE for SECONDS, open loop (`realtime-bench paced`: request
    i leaves at i / RATE on connection i mod CONNECTIONS, answered or not). → deliveries/s from the
    first request to the last delivery, start latency from PiCloud's histogram, the client's view."""
    host = "127.0.0.1"
    latency = "picloud_trigger_start_latency_seconds"
    count = int(rate * seconds)

    def metrics():
        return http_get(host, port, "/metrics")[1].decode()

    before = metrics()
    d0 = metric_value(before, "picloud_trigger_deliveries_total") or 0
    run = subprocess.run([binary, "paced", "--port", str(port), "--path", f"/apps/cmptrig/api/write/1?w=r{rate:g}", "--rate", str(rate),
                          "--requests", str(count), "--connections", str(connections)], capture_output=True, text=True, timeout=60 + 20 * seconds)
    if run.returncode != 0:
        raise SystemExit(f"realtime-bench paced failed: {run.stderr}")
    client = json.loads(run.stdout)
    t2, delivered = None, d0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        delivered = metric_value(metrics(), "picloud_trigger_deliveries_total") or 0
        if delivered >= d0 + count:
            t2 = time.time()  # wall clock, as the client's start_us
            break
        time.sleep(0.01)
    after = metrics()
    passed = histogram_diff(histogram(after, latency), histogram(before, latency))
    # From the first request's due time (the client's clock, same machine) to the last delivery
    # seen (polled every 10 ms, which makes a server that keeps up look a little slower).
    per_s = round(count / ((t2 or time.time()) - client["start_us"] / 1e6))
    result = {"rate": rate, "events": count, "connections": connections, "complete": t2 is not None, "deliveries_per_s": per_s,
              "kept_up": t2 is not None and per_s >= 0.95 * rate, "write_errors": client["errors"],
              "client_p50_ms": client["client_p50_ms"], "client_p99_ms": client["client_p99_ms"], "send_late_p99_ms": client["late_p99_ms"]}
    result["p50_ms"], result["p50_le_ms"] = quantile(passed, 0.5)
    result["p99_ms"], result["p99_le_ms"] = quantile(passed, 0.99)
    return result


def trigger_backlog(port, events, writers):
    """Writes a backlog: WRITERS requests at once doing EVENTS/WRITERS kv.set calls each, against a
    server that delivers nothing (PICLOUD_DISPATCHER_CONCURRENCY=0). → how many were written."""
    host, per = "127.0.0.1", events // writers
    statuses = []
    threads = [threading.Thread(target=lambda w=w: statuses.append(
        http_get(host, port, f"/apps/cmptrig/api/write/{per}?w=b{w}", timeout=300, method="POST")[0])) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    delivered = metric_value(http_get(host, port, "/metrics")[1].decode(), "picloud_trigger_deliveries_total") or 0
    return {"written": per * writers, "write_errors": sum(1 for s in statuses if s != 200), "delivered": int(delivered)}


def trigger_drain(port, expected):
    """The dispatcher alone on a backlog, from a server's start: polls the delivery count every 5 ms
    from its first answer until EXPECTED are delivered. → deliveries/s between the two."""
    host = "127.0.0.1"

    def delivered():
        return metric_value(http_get(host, port, "/metrics")[1].decode(), "picloud_trigger_deliveries_total") or 0

    t0, d0 = time.monotonic(), delivered()
    deadline = t0 + 120
    while time.monotonic() < deadline:
        d = delivered()
        if d >= expected:
            t1 = time.monotonic()
            return {"backlog": expected, "first_seen_delivered": int(d0), "seconds": round(t1 - t0, 3),
                    "per_s": round((d - d0) / (t1 - t0)) if t1 > t0 else None, "complete": True}
        time.sleep(0.005)
    return {"backlog": expected, "first_seen_delivered": int(d0), "complete": False, "per_s": None}


# ---------------------------------------------------------------- cold start and deploy

def cold_picloud(binary, app_dir, repeats, work):
    first_ready, first_app, again_ready, again_app, logs = [], [], [], [], []
    for r in range(repeats):
        data = os.path.join(work, f"cold-data-{r}")
        shutil.rmtree(data, ignore_errors=True)
        for attempt, (ready, app, extra) in enumerate(((first_ready, first_app, ["--deploy", app_dir]), (again_ready, again_app, []))):
            port = free_port()
            log = os.path.join(work, f"cold-{r}-{attempt}.log")
            with open(log, "w") as err:
                t0 = time.monotonic()
                process = subprocess.Popen([binary, "serve", "--port", str(port), "--data-dir", data, "--log-level", "notice"] + extra,
                                           stdout=subprocess.DEVNULL, stderr=err)
                t_ready = poll_ok("127.0.0.1", port, "/healthz", t0 + 30)
                t_app = poll_ok("127.0.0.1", port, "/apps/cmp/api/hello", t0 + 30)
                process.send_signal(signal.SIGTERM)
                code = process.wait(timeout=30)
            if t_ready is None or t_app is None or code != 0:
                logs.append(f"run {r} {'restart' if attempt else 'first'}: ready={t_ready is not None} app={t_app is not None} exit={code}: "
                            + open(log).read()[-400:])
            if t_ready is not None:
                ready.append((t_ready - t0) * 1000)
            if t_app is not None:
                app.append((t_app - t0) * 1000)
    return {"first_ready_ms": summary(first_ready), "first_app_ms": summary(first_app),
            "restart_ready_ms": summary(again_ready), "restart_app_ms": summary(again_app), "problems": logs}


def nginx_port(prefix):
    return int(re.search(r"listen 127\.0\.0\.1:(\d+)", open(os.path.join(prefix, "nginx.conf")).read()).group(1))


def cold_nginx(prefix, repeats):
    port = nginx_port(prefix)
    ready, problems = [], []
    for r in range(repeats):
        t0 = time.monotonic()
        process = subprocess.Popen(["nginx", "-c", os.path.join(prefix, "nginx.conf"), "-p", prefix],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t = poll_ok("127.0.0.1", port, "/hello", t0 + 30)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        if t is None:
            problems.append(f"run {r}: nginx did not answer /hello")
        else:
            ready.append((t - t0) * 1000)
        time.sleep(0.2)
    return {"ready_ms": summary(ready), "problems": problems}


def deploy_picloud(port, token, app_dir, repeats):
    manifest = open(os.path.join(app_dir, "picloud.toml")).read()
    handler = open(os.path.join(app_dir, "handlers/v.lua")).read()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    ack, first, problems = [], [], []
    for k in range(1, repeats + 1):
        body = json.dumps({
            "manifest": manifest + f'\n[[endpoints]]\nmethod = "GET"\npath = "/v{k}"\nhandler = "handlers/v{k}.lua"\n',
            "files": {"handlers/v.lua": handler, f"handlers/v{k}.lua": f"return function() return {{ json = {{ v = {k} }} }} end\n"},
        })
        t0 = time.monotonic()
        status, answer = http_get("127.0.0.1", port, "/admin/apps/cmpdeploy/deployment", timeout=30, method="PUT", body=body, headers=headers)
        t_ack = time.monotonic()
        if status != 201:
            problems.append(f"deploy {k}: {status} {answer[:300]!r}")
            continue
        t1 = poll_ok("127.0.0.1", port, f"/apps/cmpdeploy/api/v{k}", t0 + 30)
        if t1 is None:
            problems.append(f"deploy {k}: /v{k} never answered 200")
            continue
        ack.append((t_ack - t0) * 1000)
        first.append((t1 - t0) * 1000)
        time.sleep(0.2)
    return {"ack_ms": summary(ack), "first_invocation_ms": summary(first), "problems": problems}


def deploy_nginx(prefix, repeats):
    port = nginx_port(prefix)
    master = int(open(os.path.join(prefix, "nginx.pid")).read())
    first, problems = [], []
    for k in range(1, repeats + 1):
        with open(os.path.join(prefix, "deploy.conf"), "w") as f:
            f.write(f'location = /v{k} {{ default_type application/json; content_by_lua_block {{ ngx.say(\'{{"v":{k}}}\') }} }}\n')
        t0 = time.monotonic()
        os.kill(master, signal.SIGHUP)
        t1 = poll_ok("127.0.0.1", port, f"/v{k}", t0 + 30)
        if t1 is None:
            problems.append(f"reload {k}: /v{k} never answered 200")
        else:
            first.append((t1 - t0) * 1000)
        time.sleep(0.5)
    return {"first_invocation_ms": summary(first), "problems": problems}


# ---------------------------------------------------------------- machine facts

def kernel_thread_seconds(tick):
    """CPU seconds of the kernel's threads (journal commits and writeback for the durable writes are done there)."""
    total = 0
    for _, fields in proc_stats():
        if int(fields[6]) & 0x00200000:  # PF_KTHREAD
            total += int(fields[11]) + int(fields[12])
    return total / tick


def mark(pid):
    """The machine's user + system CPU seconds (all cores), PID's own and its waited-for children's, the kernel
    threads', and the time. Between two marks, (busy - own - kernel) / wall = cores used by other processes."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = open("/proc/stat").readline().split()[1:]
    busy = (int(fields[0]) + int(fields[1]) + int(fields[2])) / tick
    text = open(f"/proc/{pid}/stat").read()
    own = sum(int(v) for v in text[text.rfind(")") + 2:].split()[11:15]) / tick
    return f"{busy:.2f} {own:.2f} {kernel_thread_seconds(tick):.2f} {time.monotonic():.3f}"


def other_cores(work):
    """{workload: (cores used on average by other processes, by kernel threads) while it ran}, from WORK/<workload>.marks."""
    result = {}
    for path in sorted(glob.glob(f"{work}/*.marks")):
        lines = open(path).read().split("\n")
        try:
            (b0, o0, k0, w0), (b1, o1, k1, w1) = [tuple(map(float, l.split())) for l in lines[:2]]
        except ValueError:
            continue
        wall = w1 - w0
        result[os.path.basename(path)[:-6]] = (round(max(0.0, ((b1 - b0) - (o1 - o0) - (k1 - k0)) / wall), 2), round((k1 - k0) / wall, 2))
    return result


def facts(work):
    cpu = "unknown"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal:")), 0)
    fs = subprocess.run(["findmnt", "-n", "-o", "SOURCE,FSTYPE,OPTIONS", "-T", work], capture_output=True, text=True).stdout.strip()
    # fsync of a 4 KiB append, 200 times, in the benchmark's temporary directory
    path = os.path.join(work, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    samples = []
    for _ in range(200):
        os.write(fd, b"x" * 4096)
        t0 = time.perf_counter()
        os.fsync(fd)
        samples.append((time.perf_counter() - t0) * 1000)
    os.close(fd)
    os.unlink(path)
    samples.sort()
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem / 1024 / 1024, 1), "kernel": os.uname().release,
            "filesystem": fs, "fsync_p50_ms": round(samples[100], 3), "fsync_p99_ms": round(samples[197], 3)}


# ---------------------------------------------------------------- the report

def fmt(value, digits=0):
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        return value
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def rounds_note(rounds, picloud, peer, peer_label, unit):
    """How the rounds of one workload went: each round's ratio and both sides' figures."""
    return (f"{len(rounds['ratios'])} rounds back to back, ratios " + " / ".join(f"{r:.2f}" for r in rounds["ratios"])
            + " (median used); PiCloud " + " / ".join(f"{v:.0f}" for v in picloud["rounds_rps"])
            + f", {peer_label} " + " / ".join(f"{v:.0f}" for v in peer["rounds_rps"]) + f" {unit}")


def build_rows(work):
    """Every result row of this run, from the raw files of the workloads that ran."""
    rows = []

    def row(**fields):
        base = {"name": "", "metric": "", "unit": "", "picloud": None, "peer_name": "", "peer": None, "ratio": None,
                "p50_ms": None, "p99_ms": None, "rss_kib": None, "peer_p50_ms": None, "peer_p99_ms": None, "peer_rss_kib": None,
                "goal": "", "met": "", "notes": "", "ratio_goal": None, "absolute": []}
        base.update(fields)
        rows.append(base)

    def http_notes(side, label):
        notes = []
        if side.get("non2xx"):
            notes.append(f"{label}: {side['non2xx']} non-2xx answers")
        if side.get("socket_errors"):
            notes.append(f"{label}: socket errors {side['socket_errors']}")
        return notes

    for name, metric, peer_label in (("hello", "requests/s", "ngx_lua content_by_lua_block"),
                                     ("kv-read", "requests/s", "ngx_lua lua_shared_dict get")):
        p, n = load(f"{work}/{name}-picloud.json"), load(f"{work}/{name}-nginx.json")
        if not p or not n:
            continue
        ratio = p["rps"] / n["rps"]
        notes = http_notes(p, "PiCloud") + http_notes(n, "nginx")
        rounds = load(f"{work}/{name}-rounds.json")
        if rounds:
            # The median of the rounds' ratios; the requests/s shown are each side's median round.
            ratio = rounds["ratio"]
            notes.insert(0, rounds_note(rounds, p, n, "nginx", "req/s"))
        row(name=name, metric=metric, unit="req/s", picloud=p["rps"], peer_name=peer_label, peer=n["rps"], ratio=ratio,
            p50_ms=p["p50_ms"], p99_ms=p["p99_ms"], rss_kib=p.get("pss_kib"), peer_p50_ms=n["p50_ms"], peer_p99_ms=n["p99_ms"],
            peer_rss_kib=n.get("pss_kib"), goal="≥ 0.7 × peer", met="yes" if ratio >= 0.7 else "no", ratio_goal=0.7,
            notes="; ".join(notes))

    p, b, n = load(f"{work}/hello-picloud.json"), load(f"{work}/hello-swiftnio.json"), load(f"{work}/hello-nginx.json")
    if p and b:
        row(name="hello-floor", metric="requests/s", unit="req/s", picloud=p["rps"],
            peer_name="bare SwiftNIO server, same JSON prebuilt, no parsing or Lua", peer=b["rps"], ratio=p["rps"] / b["rps"],
            p50_ms=p["p50_ms"], p99_ms=p["p99_ms"], rss_kib=p.get("pss_kib"), peer_p50_ms=b["p50_ms"], peer_p99_ms=b["p99_ms"],
            peer_rss_kib=b.get("pss_kib"), goal="(reference: the floor of PiCloud's HTTP stack)", met="",
            notes="; ".join(([f"the bare SwiftNIO server is {b['rps'] / n['rps']:.2f} × ngx_lua"] if n else []) + http_notes(b, "SwiftNIO")))

    p, r = load(f"{work}/kv-write-picloud.json"), load(f"{work}/kv-write-redis.json")
    if p and r:
        ratio = p["rps"] / r["rps"]
        notes = ["each write stores a new value"] + http_notes(p, "PiCloud")
        rounds = load(f"{work}/kv-write-rounds.json")
        if rounds:
            ratio = rounds["ratio"]
            notes.insert(0, rounds_note(rounds, p, r, "Redis", "writes/s"))
        row(name="kv-write", metric="durable writes/s", unit="writes/s", picloud=p["rps"], peer_name="Redis EVALSHA, appendfsync always",
            peer=r["rps"], ratio=ratio, p50_ms=p["p50_ms"], p99_ms=p["p99_ms"], rss_kib=p.get("pss_kib"), peer_p50_ms=r["p50_ms"],
            peer_p99_ms=r["p99_ms"], peer_rss_kib=r.get("pss_kib"), goal="≥ 1.0 × Redis and ≥ 15,000/s",
            met="yes" if ratio >= 1.0 and p["rps"] >= 15000 else "no", ratio_goal=1.0,
            absolute=[{"label": "kv-write: writes/s vs 15,000", "score": p["rps"] / 15000, "value": f"{p['rps']:,.0f}/s"}],
            notes="; ".join(notes))
    t = load(f"{work}/kv-write-tarantool.json")
    if p and t:
        row(name="kv-write-ceiling", metric="durable writes/s", unit="writes/s", picloud=p["rps"],
            peer_name=f"Tarantool box.space:replace, wal_mode=fsync, {t['fibers']} fibers, in process", peer=t["rps"],
            ratio=p["rps"] / t["rps"], p50_ms=p["p50_ms"], p99_ms=p["p99_ms"], rss_kib=p.get("pss_kib"), peer_p50_ms=t["p50_ms"],
            peer_p99_ms=t["p99_ms"], goal="(reference: group-commit ceiling of this disk)", met="")

    tr = load(f"{work}/trigger-picloud.json")
    if tr:
        notes = [f"writes/s during the burst {tr['writes_per_s']:,}",
                 f"backlog drained at {tr['backlog_per_s']:,}/s" if tr.get("backlog_per_s") else "no backlog worth timing (delivery kept up)",
                 f"p50 bucket ≤ {fmt(tr['burst_p50_le_ms'], 1)} ms"]
        for key, label in (("burst_write_errors", "write errors"), ("failures", "handler failures"), ("steady_write_errors", "steady write errors")):
            if tr.get(key):
                notes.append(f"{label}: {tr[key]:g}")
        if not tr.get("burst_complete") or not tr.get("steady_complete"):
            notes.append("NOT ALL EVENTS DELIVERED within the time limit")
        met = tr["deliveries_per_s"] >= 10000 and (tr["burst_p50_ms"] or 1e9) < 2
        row(name="trigger", metric="deliveries/s (kv.set → handler run, burst)", unit="deliveries/s", picloud=tr["deliveries_per_s"],
            p50_ms=tr["burst_p50_ms"], p99_ms=tr["burst_p99_ms"], goal="≥ 10,000/s, p50 enqueue→start < 2 ms", met="yes" if met else "no",
            absolute=[{"label": "trigger: deliveries/s vs 10,000", "score": tr["deliveries_per_s"] / 10000, "value": f"{tr['deliveries_per_s']:,}/s"},
                      {"label": "trigger burst: p50 start vs 2 ms", "score": 2 / max(tr["burst_p50_ms"] or 1e9, 1e-3), "value": f"{fmt(tr['burst_p50_ms'], 2)} ms"}],
            notes="; ".join(notes))
        drain = load(f"{work}/trigger-drain.json")
        if drain and drain.get("per_s"):
            row(name="trigger-drain", metric=f"deliveries/s of the dispatcher alone (a backlog of {drain['backlog']:,}, after a restart)",
                unit="deliveries/s", picloud=drain["per_s"], goal="≥ 10,000/s", met="yes" if drain["per_s"] >= 10000 else "no",
                absolute=[{"label": "trigger drain: deliveries/s vs 10,000", "score": drain["per_s"] / 10000, "value": f"{drain['per_s']:,}/s"}],
                notes=f"{drain['first_seen_delivered']:,} delivered before the first look, the rest in {drain['seconds']} s"
                      + ("" if drain.get("complete") else "; NOT ALL DELIVERED within the time limit"))
        for path in sorted(glob.glob(f"{work}/trigger-paced-*.json"), key=lambda s: float(s.rsplit("-", 1)[1][:-5])):
            pr = load(path)
            if not pr:
                continue
            notes = [f"{pr['events']:,} requests in {pr['events'] / pr['rate']:g} s on {pr['connections']} connections, one kv.set each",
                     "kept up" if pr["kept_up"] else f"DID NOT KEEP UP: {pr['deliveries_per_s']:,} of {pr['rate']:,.0f} deliveries/s",
                     f"client: answer p50 {fmt(pr['client_p50_ms'], 2)} ms, p99 {fmt(pr['client_p99_ms'], 2)} ms",
                     f"p50 bucket ≤ {fmt(pr['p50_le_ms'], 1)} ms"]
            if pr.get("write_errors"):
                notes.append(f"write errors: {pr['write_errors']}")
            if not pr.get("complete"):
                notes.append("NOT ALL EVENTS DELIVERED within the time limit")
            at_goal = pr["rate"] >= 10000
            met = pr["kept_up"] and (pr["p50_ms"] or 1e9) < 2
            row(name=f"trigger-paced-{pr['rate']:g}", metric=f"deliveries/s at {pr['rate']:,.0f} writes/s offered, one request each (open loop)",
                unit="deliveries/s", picloud=pr["deliveries_per_s"], p50_ms=pr["p50_ms"], p99_ms=pr["p99_ms"],
                goal="≥ 10,000/s, p50 enqueue→start < 2 ms" if at_goal else "(reference: p50 < 2 ms)",
                met=("yes" if met else "no") if at_goal else ("p50 yes" if met else "p50 no"),
                absolute=[{"label": f"trigger at {pr['rate']:,.0f}/s: p50 start vs 2 ms", "score": 2 / max(pr["p50_ms"] or 1e9, 1e-3),
                           "value": f"{fmt(pr['p50_ms'], 2)} ms"}] if pr["kept_up"] else
                         [{"label": f"trigger at {pr['rate']:,.0f}/s offered: deliveries/s", "score": pr["deliveries_per_s"] / pr["rate"],
                           "value": f"{pr['deliveries_per_s']:,}/s"}],
                notes="; ".join(notes))
        row(name="trigger-steady", metric=f"p50 enqueue→start at a steady {tr['steady_rate']:g}/s (ms)", unit="ms", picloud=tr["steady_p50_ms"],
            p50_ms=tr["steady_p50_ms"], p99_ms=tr["steady_p99_ms"], goal="p50 < 2 ms", met="yes" if (tr["steady_p50_ms"] or 1e9) < 2 else "no",
            absolute=[{"label": "trigger steady: p50 start vs 2 ms", "score": 2 / max(tr["steady_p50_ms"] or 1e9, 1e-3), "value": f"{fmt(tr['steady_p50_ms'], 2)} ms"}],
            notes=f"histogram estimate; p50 bucket ≤ {fmt(tr['steady_p50_le_ms'], 1)} ms, p99 bucket ≤ {fmt(tr['steady_p99_le_ms'], 1)} ms")

    for path in sorted(glob.glob(f"{work}/fanout-*-picloud.json"), key=lambda s: int(s.split("-")[-2])):
        n = int(path.split("-")[-2])
        p, c = load(path), load(f"{work}/fanout-{n}-nchan.json")
        if not p or not c:
            continue
        pc, cc = p["client"], c["client"]

        def per_sub(side):
            return (side["pss_after"] - side["pss_before"]) / n if side.get("pss_after") else None

        def problems(side, label, publish_ok):
            cl = side["client"]
            notes = []
            missing = sum(cl[k]["expected"] - cl[k]["delivered"] for k in ("steady", "burst") if k in cl)
            gaps = sum(cl[k]["gaps"] for k in ("steady", "burst") if k in cl)
            if missing:
                notes.append(f"{label}: {missing} events missing")
            if gaps:
                notes.append(f"{label}: {gaps} gap frames")
            if cl["connect_failures"]:
                notes.append(f"{label}: {cl['connect_failures']} subscribers failed to connect")
            if cl.get("streams_ended") or cl.get("stream_errors"):
                notes.append(f"{label}: {cl['streams_ended'] + cl['stream_errors']} streams ended early")
            if publish_ok:
                errs = sum(cl[k]["publish_errors"] for k in ("steady", "burst") if k in cl)
                if errs:
                    notes.append(f"{label}: {errs} publishes not answered 200")
            return notes

        p_sub, c_sub = per_sub(p), per_sub(c)
        notes = problems(p, "PiCloud", True) + problems(c, "nchan", False)
        notes.append(f"server CPU over the whole run: PiCloud {p['cpu_s']:.2f} s, nchan {c['cpu_s']:.2f} s")
        notes.append(f"server CPU in the steady pass (every process): PiCloud {pc['steady']['server_cpu_s']:.2f} s, "
                     f"nchan {cc['steady']['server_cpu_s']:.2f} s")
        rate = p["rate"]
        goal, met, absolute, ratio_goal = "", "", [], None
        ratio = pc["steady"]["delivered_per_s"] / cc["steady"]["delivered_per_s"] if cc["steady"]["delivered_per_s"] else None
        if n == 10000:
            ratio_goal = 1.0
            goal = "≥ 1.0 × nchan, p99 < 50 ms, < 10 KiB per idle subscriber"
            ok = ratio is not None and ratio >= 1.0 and pc["steady"]["p99_ms"] < 50 and p_sub is not None and p_sub < 10
            met = "yes" if ok else "no"
            absolute = [{"label": f"fan-out {n}: p99 vs 50 ms", "score": 50 / max(pc["steady"]["p99_ms"], 1e-3), "value": f"{pc['steady']['p99_ms']:.1f} ms"},
                        {"label": f"fan-out {n}: KiB/subscriber vs 10", "score": 10 / max(p_sub or 1e9, 1e-3), "value": f"{fmt(p_sub, 1)} KiB"}]
        row(name=f"fanout-{n}", metric=f"delivered events/s, {n:,} subscribers, {rate:g} events/s published", unit="events/s",
            picloud=pc["steady"]["delivered_per_s"], peer_name="nchan EventSource", peer=cc["steady"]["delivered_per_s"], ratio=ratio,
            p50_ms=pc["steady"]["p50_ms"], p99_ms=pc["steady"]["p99_ms"], rss_kib=p_sub, peer_p50_ms=cc["steady"]["p50_ms"],
            peer_p99_ms=cc["steady"]["p99_ms"], peer_rss_kib=c_sub, goal=goal, met=met, ratio_goal=ratio_goal, absolute=absolute,
            notes="; ".join(notes))
        if "burst" in pc and "burst" in cc:
            row(name=f"fanout-{n}-burst", metric=f"delivered events/s, {n:,} subscribers, published back to back", unit="events/s",
                picloud=pc["burst"]["delivered_per_s"], peer_name="nchan EventSource", peer=cc["burst"]["delivered_per_s"],
                ratio=pc["burst"]["delivered_per_s"] / cc["burst"]["delivered_per_s"] if cc["burst"]["delivered_per_s"] else None,
                p50_ms=pc["burst"]["p50_ms"], p99_ms=pc["burst"]["p99_ms"], peer_p50_ms=cc["burst"]["p50_ms"], peer_p99_ms=cc["burst"]["p99_ms"],
                notes=f"publishing {pc['burst']['events']} events took PiCloud {pc['burst']['publish_s']} s, nchan {cc['burst']['publish_s']} s")
        b = load(f"{work}/fanout-{n}-swiftnio.json")
        if b:
            bc = b["client"]
            notes = problems(b, "SwiftNIO", True)
            notes.append(f"p50 publish → receive: PiCloud {fmt(pc['steady']['p50_ms'], 1)} ms, SwiftNIO {fmt(bc['steady']['p50_ms'], 1)} ms, "
                         f"nchan {fmt(cc['steady']['p50_ms'], 1)} ms; p99 nchan {fmt(cc['steady']['p99_ms'], 1)} ms")
            notes.append(f"server CPU in the steady pass: SwiftNIO {bc['steady']['server_cpu_s']:.2f} s, PiCloud {pc['steady']['server_cpu_s']:.2f} s; "
                         f"client {bc['steady']['client_cpu_s']:.2f} s")
            row(name=f"fanout-{n}-floor", metric=f"p99 publish → receive (ms), {n:,} subscribers, {rate:g} events/s", unit="ms",
                picloud=pc["steady"]["p99_ms"], peer_name="bare SwiftNIO server, one prebuilt frame per event, no Lua, database or topics",
                peer=bc["steady"]["p99_ms"], ratio=bc["steady"]["p99_ms"] / pc["steady"]["p99_ms"] if pc["steady"]["p99_ms"] else None,
                p50_ms=pc["steady"]["p50_ms"], p99_ms=pc["steady"]["p99_ms"], peer_p50_ms=bc["steady"]["p50_ms"], peer_p99_ms=bc["steady"]["p99_ms"],
                goal="(reference: the least latency this machine and client allow)", met="", notes="; ".join(notes))

    cp, cn = load(f"{work}/cold-picloud.json"), load(f"{work}/cold-nginx.json")
    if cp and cn:
        peer = cn["ready_ms"]["median"]
        problems = "; ".join(cp["problems"] + cn["problems"])
        for name, key, label, goal in (("cold-start", "restart_ready_ms", "process start → /healthz 200, existing data dir (ms, median)", 300),
                                       ("cold-start-first", "first_ready_ms", "process start → /healthz 200, empty data dir (ms, median)", 300),
                                       ("cold-start-app", "restart_app_ms", "process start → first 200 of the hello endpoint, existing data dir (ms, median)", None)):
            s = cp[key]
            v = s["median"]
            row(name=name, metric=label, unit="ms", picloud=v, peer_name="nginx start → first 200 of /hello", peer=peer,
                ratio=peer / v if v and peer else None, p50_ms=v, p99_ms=s["max"], peer_p50_ms=peer, peer_p99_ms=cn["ready_ms"]["max"],
                goal=f"< {goal} ms" if goal else "", met=("yes" if v is not None and v < goal else "no") if goal else "",
                absolute=[{"label": f"{name}: vs {goal} ms", "score": goal / max(v or 1e9, 1e-3), "value": f"{fmt(v, 1)} ms"}] if goal else [],
                notes=(problems if name == "cold-start" else ""))
    dp, dn = load(f"{work}/deploy-picloud.json"), load(f"{work}/deploy-nginx.json")
    if dp and dn:
        v, peer = dp["first_invocation_ms"]["median"], dn["first_invocation_ms"]["median"]
        row(name="deploy", metric="deploy → first 200 of a new endpoint (ms, median)", unit="ms", picloud=v,
            peer_name="nginx reload (SIGHUP) → first 200 of a new location", peer=peer, ratio=peer / v if v and peer else None,
            p50_ms=v, p99_ms=dp["first_invocation_ms"]["max"], peer_p50_ms=peer, peer_p99_ms=dn["first_invocation_ms"]["max"],
            goal="< 100 ms", met="yes" if v is not None and v < 100 else "no",
            absolute=[{"label": "deploy → first invocation vs 100 ms", "score": 100 / max(v or 1e9, 1e-3), "value": f"{fmt(v, 1)} ms"}],
            notes="; ".join([f"PUT acknowledged after {fmt(dp['ack_ms']['median'], 1)} ms (median)"] + dp["problems"] + dn["problems"]))
    return rows


CSV_HEADER = ("name,picloud,peer,ratio,p50_ms,p99_ms,rss_kib,peer_p50_ms,peer_p99_ms,peer_rss_kib,"
              "unit,peer_name,goal,met,run,notes")


def csv_field(value):
    if value is None:
        return ""
    if isinstance(value, float):
        value = f"{value:.3f}".rstrip("0").rstrip(".")
    value = str(value)
    if any(c in value for c in ',"\n'):
        value = '"' + value.replace('"', '""') + '"'
    return value


def report(work, out_prefix):
    rows = build_rows(work)
    others = other_cores(work)
    for r in rows:
        workload = "cold-start" if r["name"] == "deploy" else next((w for w in sorted(others, key=len, reverse=True) if r["name"].startswith(w)), None)
        if workload in others:
            note = f"other processes used {others[workload][0]:.2f} cores during the workload (kernel threads {others[workload][1]:.2f})"
            r["notes"] = f"{r['notes']}; {note}" if r["notes"] else note
    params = load(f"{work}/params.json", {})
    env = load(f"{work}/facts.json", {})
    versions = load(f"{work}/versions.json", {})
    run = params.get("run", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    csv = out_prefix + ".csv"
    new = not os.path.exists(csv) or os.path.getsize(csv) == 0
    with open(csv, "a") as f:
        if new:
            f.write(CSV_HEADER + "\n")
        for r in rows:
            f.write(",".join(csv_field(r[k] if k != "run" else run) for k in CSV_HEADER.split(",")) + "\n")

    with open(os.path.join(work, "chart.json"), "w") as f:
        json.dump({"run": run, "date": params.get("date", ""), "rows": rows}, f)

    base = os.path.basename(out_prefix)
    md = [f"# PiCloud against OpenResty, nchan, Redis and Tarantool ({params.get('date', '')})", ""]
    md.append(f"`make bench-compare` (`bench/compare/run.sh`, see [its README](../compare/README.md)), run {run}. "
              f"Every workload runs against PiCloud and then against its peer, one after the other, on this machine, on loopback; "
              f"the rows are appended to [`{base}.csv`]({base}.csv); the chart is [`{base}.png`]({base}.png).")
    md.append("")
    load_note = params.get("load_note", "")
    if load_note:
        md += [f"**Machine load**: {load_note}.", ""]
    probes = [params.get(k) for k in ("probe_start", "probe_end")]
    if all(probes):
        def probe_text(p):
            return (f"{p['flush_4k_ms']:.2f} / {p['flush_256k_ms']:.2f} ms, {p['loopback_rtt_us']:.1f} µs, "
                    f"{p['sha256_mib_per_s']:,} MiB/s")
        md += ["**Machine speed** (`compare.py probe`: median 4 KiB / 256 KiB `pwrite` + `fdatasync` on the data directory's disk, "
               f"a one-byte loopback TCP round trip between processes on two cores, SHA-256 on one core): {probe_text(probes[0])} when the run started, {probe_text(probes[1])} when it ended. "
               "This VM's disk and CPU change speed by the hour: compare runs with these in mind.", ""]
    if others:
        md += ["Other work on the machine while each workload ran, in cores out of " + str(env.get("cores", "?")) + " (CPU time used by "
               "processes that are not the benchmark's / wall time; in brackets the kernel's threads, where the journal commits and "
               "writeback of durable writes run): " + ", ".join(f"{k} {v[0]:.2f} ({v[1]:.2f})" for k, v in others.items()) + ".", ""]
    md += ["Ratio = PiCloud / peer for rates, peer / PiCloud for times: above 1 means PiCloud did better.", "",
           "| workload | metric | PiCloud | peer | peer value | ratio | goal (issue 8) | met? |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        digits = 2 if r["unit"] == "ms" else 0
        md.append(f"| {r['name']} | {r['metric']} | {fmt(r['picloud'], digits)} | {r['peer_name'] or '— (no peer)'} | {fmt(r['peer'], digits)} | "
                  f"{fmt(r['ratio'], 2)} | {r['goal'] or '—'} | {r['met'] or '—'} |")
    md += ["", "Reading it: at a fixed publish rate a server that keeps up delivers rate × N events/s, so a fan-out ratio near 1 means "
           "both kept up (its distance from 1 is the last events' latency; the burst rows show capacity), and with 10,000 subscribers the "
           "single-threaded client's own reading adds to both servers' latency. The trigger burst cannot deliver faster than it writes: "
           "when its notes say there was no backlog, delivery kept up and the figure is the write rate; trigger-drain is the dispatcher "
           "alone. kv-write-ceiling is not networked: "
           "it shows what one fsync shared by many writers gives on this disk.",
           "", "![ratios](" + base + ".png)", "", "## Latency, memory and notes", "",
           "p50/p99 in ms: wrk's for HTTP, redis-benchmark's for Redis, per replace for Tarantool, enqueue→start from PiCloud's histogram for "
           "triggers (estimated inside the bucket), publish → receive for fan-out (the steady pass), and median/max of the repeats for cold "
           "start and deploy. Memory: proportional set size (PSS, KiB) of the server's processes after the workload; for fan-out, KiB per "
           "idle subscriber = (PSS with every subscriber connected − PSS before) / subscribers.", "",
           "| workload | PiCloud p50 | PiCloud p99 | PiCloud memory | peer p50 | peer p99 | peer memory | notes |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['name']} | {fmt(r['p50_ms'], 2)} | {fmt(r['p99_ms'], 2)} | {fmt(r['rss_kib'], 1 if r['name'].startswith('fanout') else 0)} | "
                  f"{fmt(r['peer_p50_ms'], 2)} | {fmt(r['peer_p99_ms'], 2)} | {fmt(r['peer_rss_kib'], 1 if r['name'].startswith('fanout') else 0)} | "
                  f"{r['notes'] or ''} |")
    d, c, w = params.get("duration", "?"), params.get("connections", "?"), params.get("threads", "?")
    try:
        problems = open(os.path.join(work, "problems.txt")).read().splitlines()
    except OSError:
        problems = []
    md += ["", "## Problems seen", ""]
    if problems:
        md.append(f"{len(problems)} PiCloud log lines at warning or above, or servers that did not exit with status 0 after SIGTERM; the first ones:")
        md += ["", "```"] + [p[:300] for p in problems[:20]] + ["```"]
    else:
        md.append("None: no PiCloud log line at warning or above (every PiCloud this run started logged at `--log-level notice`), and "
                  "every server exited with status 0 after SIGTERM. Errors that the workloads count (non-2xx answers, missing events, "
                  "gap frames, handler failures) are in the notes above.")
    md += ["", "## Method", "",
           f"- PiCloud: release build (`swift build -c release -Xswiftc -enforce-exclusivity=unchecked`, `swift_release` in `scripts/env.sh`), `picloud serve` on 127.0.0.1 with a new temporary data directory per workload, "
           f"the default SQLite store (`PICLOUD_SQLITE_SYNCHRONOUS` unset: synchronous=full, a write is acknowledged after its commit is on disk), "
           f"`--log-level notice`, the apps of `bench/compare/apps/`. Peers: Debian's packages with their own temporary configs "
           f"(`bench/compare/peers/`) on free loopback ports; never the system services. nginx runs {params.get('nginx_workers', '?')} worker "
           f"processes (one per core, as deployed), Redis one.",
           f"- **hello**, **kv-read**: `wrk -t{w} -c{c} -d{d}s --latency` after a {params.get('warmup', '?')} s warm-up run (discarded), "
           f"against `GET /apps/cmp/api/hello` (`return {{ json = {{ hello = \"world\" }} }}`) and `GET /apps/cmp/api/kv` "
           f"(`{{ json = {{ n = kv.get(\"hot\") }} }}`) vs nginx `content_by_lua_block` with `cjson.encode({{hello = \"world\"}})` and "
           f"`cjson.encode({{n = ngx.shared.bench:get(\"hot\")}})` (`lua_shared_dict`). `keepalive_requests` is raised so nginx keeps wrk's connections. "
           f"{params.get('rounds', 1)} rounds of a fresh PiCloud and a fresh nginx back to back (PiCloud first in odd rounds, nginx in even ones): "
           f"each side's figures are its median round, and the ratio is the median of the rounds' ratios, so that a slow spell of the "
           f"machine (this VM's speed drifts by a quarter within minutes) weighs on both sides of a ratio. "
           f"**hello-floor**: the same wrk run against `realtime-bench hello-server` (`bench/RealtimeBench/HelloServer.swift`), a bare SwiftNIO "
           f"server on as many event loops as cores that answers every request head with the same prebuilt response (the same JSON): no HTTP "
           f"parsing, routing, Lua or allocation per request, the least that PiCloud's HTTP stack (SwiftNIO) does.",
           f"- **kv-write**: `wrk -t{w} -c{c}` POST `/apps/cmp/api/write` (one `kv.set(\"w\", value)`, each value new: the VM's own prefix "
           f"and a counter) vs `redis-benchmark -c {c} --threads {w} -r 1000000000000 EVALSHA <sha of return redis.call('SET', KEYS[1], "
           f"ARGV[1])> 1 w __rand_int__` (a random 12-digit value each) with `appendonly yes`, `appendfsync always`, no RDB. Until "
           f"2026-12-01 11:10 UTC both wrote the same value every time, and SQLite, which leaves a page alone when a row is rewritten with "
           f"the bytes it holds, then committed without writing or flushing anything whenever two writes fell in the same millisecond "
           f"(most of them); Redis appended and flushed every one. "
           f"redis-benchmark counts requests, so a warm-up run measures the rate and the timed run sends rate × {d} s requests. "
           f"{params.get('rounds', 1)} rounds of a fresh PiCloud and a fresh Redis back to back (PiCloud first in odd rounds, Redis in even "
           f"ones), the median round's ratio used, as for hello (until 2026-11-30 20:30 UTC one pair, PiCloud first). "
           f"**kv-write-ceiling**: Tarantool in one process, `wal_mode = 'fsync'`, {params.get('tarantool_fibers', 64)} fibers calling "
           f"`box.space.bench:replace` for {d} s (`peers/tarantool-replace.lua`): not networked, the disk's group-commit ceiling.",
           f"- **trigger** (`apps/trigger`): a `kv` trigger on prefix `t:` whose handler does nothing. Burst: {params.get('trigger_writers', '?')} "
           f"requests at once, each doing {params.get('trigger_events', '?')} / {params.get('trigger_writers', '?')} `kv.set` calls (one commit each); "
           f"deliveries/s = events / (first write → `picloud_trigger_deliveries_total` reaching them all, polled every 10 ms). Drain: the "
           f"same burst written to a server started with `PICLOUD_DISPATCHER_CONCURRENCY=0` (it delivers nothing), then a server started on "
           f"that data directory; deliveries/s = (outbox rows − delivered at the first look at `/metrics`) / (first look → all delivered, "
           f"polled every 5 ms). Steady: "
           f"{params.get('steady_events', '?')} writes at {params.get('steady_rate', '?')}/s, one request each. Paced (trigger-paced-R): "
           f"`realtime-bench paced` sends R × {params.get('trigger_rate_seconds', '?')} requests of one `kv.set` each at R/s, open loop (request i "
           f"leaves at i / R on connection i mod {params.get('connections', '?')}, pipelined behind unanswered ones), so a server that "
           f"falls behind meets the same arrivals; deliveries/s = requests / (first request's due time → all delivered, polled every "
           f"10 ms), kept up when that is at least 95 % of R. Latency = event due → handler "
           f"start from `picloud_trigger_start_latency_seconds` (the pass's buckets, after − before; estimated linearly inside the bucket, as "
           f"Prometheus does: the buckets are 0.5, 1, 2, 5, 10 ms …). No peer runs this: the issue's goal is absolute.",
           f"- **fan-out**: `realtime-bench client` (SwiftNIO, {params.get('client_threads', 1)} event loop) opens N subscribers "
           f"(`GET /apps/cmp/realtime/bench`; nchan: `GET /sub`, `nchan_subscriber eventsource`), waits until the server counts them "
           f"(PiCloud `/metrics`, nchan `nchan_stub_status`), then publishes events one HTTP POST each with the send time (PiCloud: an endpoint "
           f"calling `pubsub.publish`; nchan: `nchan_publisher`, which answers 201), first at a fixed rate (steady pass: the rate in the metric column), "
           f"then as many back to back (burst); latency = receive − send at each subscriber; delivered events/s = events received / (first publish → "
           f"last receipt). PiCloud runs with `PICLOUD_REALTIME_HEARTBEAT_SEC=30`; nchan keeps 1000 messages per channel. ulimit -n {params.get('ulimit', '?')}. "
           f"**fanout-N-floor**: the same client against `realtime-bench baseline-server` (`bench/RealtimeBench/BaselineServer.swift`), a bare "
           f"SwiftNIO server on as many event loops as cores that writes one prebuilt frame per event to every open stream (no Lua, database, "
           f"topics, tokens or history): the least latency this machine, its kernel's loopback TCP and this client allow.",
           f"- **cold start**: {params.get('cold_repeats', '?')} times: start `picloud serve --deploy apps/bench` on an empty data directory, poll "
           f"`/healthz` every ms until 200, then the hello endpoint, SIGTERM; start again on the same directory (restart). nginx: start → first 200 "
           f"of `/hello`. **deploy**: {params.get('cold_repeats', '?')} deployments (`PUT /admin/apps/cmpdeploy/deployment`) each adding an endpoint "
           f"`/v<k>`: time from sending the PUT to the first 200 of `/v<k>`; nginx: rewrite an included file with `location = /v<k>`, SIGHUP, "
           f"time to the first 200.",
           "", "## Machine and versions", ""]
    for key, label in (("cpu", "CPU"), ("cores", "cores"), ("memory_gib", "memory (GiB)"), ("kernel", "kernel"), ("filesystem", "temp dir filesystem"),
                       ("fsync_p50_ms", "fsync of a 4 KiB append, p50 ms"), ("fsync_p99_ms", "fsync p99 ms")):
        md.append(f"- {label}: {env.get(key, '?')}")
    for key, value in versions.items():
        md.append(f"- {key}: {value}")
    md.append("")
    with open(out_prefix + ".md", "w") as f:
        f.write("\n".join(md))
    for r in rows:
        print(f"{r['name']:<18} picloud {fmt(r['picloud'], 2 if r['unit'] == 'ms' else 0):>10}  peer {fmt(r['peer'], 2 if r['unit'] == 'ms' else 0):>10}  "
              f"ratio {fmt(r['ratio'], 2):>6}  goal {r['goal'] or '—'}  met {r['met'] or '—'}")


def extras(pairs):
    result = {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        try:
            result[key] = json.loads(value)
        except ValueError:
            result[key] = value
    return result


def versions():
    def run(*command):
        try:
            p = subprocess.run(command, capture_output=True, text=True, timeout=60)
            return (p.stdout + p.stderr).strip()
        except OSError as error:
            return f"({error})"

    def deb(package):
        return run("dpkg-query", "-W", "-f", "${Version}", package) or "not installed"

    head = run("git", "rev-parse", "--short", "HEAD")
    dirty = run("git", "status", "--porcelain", "--", "Sources", "Package.swift", "Package.resolved")
    return {
        "PiCloud": f"commit {head}" + (" plus uncommitted changes in Sources/ (other work in progress in this tree)" if dirty else ""),
        "Swift": run("swift", "--version").splitlines()[0] if run("swift", "--version") else "?",
        "nginx": run("nginx", "-v").replace("nginx version: ", ""),
        "ngx_lua (libnginx-mod-http-lua)": deb("libnginx-mod-http-lua"),
        "LuaJIT (libluajit2-5.1-2)": deb("libluajit2-5.1-2"),
        "lua-cjson": deb("lua-cjson"),
        "nchan (libnginx-mod-nchan)": deb("libnginx-mod-nchan"),
        "Redis": deb("redis-server"),
        "Tarantool": deb("tarantool"),
        "wrk": deb("wrk"),
        "SQLite (libsqlite3-0)": deb("libsqlite3-0"),
        "Lua (liblua5.4-0)": deb("liblua5.4-0"),
    }


def machine_probe(directory):
    """How fast this machine's disk and CPU are right now (`compare.py probe DIR`). The VM's disk
    and CPU change speed by the hour; this, taken when a run starts and ends, says how the machine
    compared with other runs'."""
    return {**flush_medians(directory), "loopback_rtt_us": loopback_rtt_us(), "sha256_mib_per_s": sha256_mib_per_s()}


def flush_medians(directory, flushes=100):
    """The medians of `flushes` 4 KiB and 256 KiB `pwrite` + `fdatasync` pairs in `directory`, ms."""
    path = os.path.join(directory, "flush-probe")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    result = {}
    try:
        for size, name in ((4096, "flush_4k_ms"), (256 * 1024, "flush_256k_ms")):
            block, times = b"\0" * size, []
            for i in range(flushes):
                start = time.perf_counter()
                os.pwrite(fd, block, (i % 16) * size)
                os.fdatasync(fd)
                times.append((time.perf_counter() - start) * 1000)
            result[name] = round(statistics.median(times), 3)
    finally:
        os.close(fd)
        os.unlink(path)
    return result


def loopback_rtt_us(rounds=5000):
    """The median one-byte loopback TCP round trip between two processes pinned to different
    cores, µs: the system calls, cross-core wake-ups and context switches that the HTTP workloads
    are mostly made of."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    cores = sorted(os.sched_getaffinity(0))
    child = os.fork()
    if child == 0:
        os.sched_setaffinity(0, {cores[-1]})
        listener.settimeout(30)  # the parent could not connect: do not wait forever
        connection, _ = listener.accept()
        connection.settimeout(None)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while (byte := connection.recv(1)):
            connection.sendall(byte)
        os._exit(0)
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cores[0]})
    try:
        with socket.create_connection(listener.getsockname()) as connection:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            times = []
            for _ in range(rounds):
                start = time.perf_counter()
                connection.sendall(b"x")
                connection.recv(1)
                times.append(time.perf_counter() - start)
    finally:
        listener.close()
        os.waitpid(child, 0)
        os.sched_setaffinity(0, affinity)
    return round(statistics.median(times) * 1e6, 1)


def sha256_mib_per_s(mib=64, repeats=3):
    """SHA-256 of `mib` MiB on one core, the fastest of `repeats`, in MiB/s."""
    import hashlib
    data, times = b"\1" * (mib << 20), []
    for _ in range(repeats):
        start = time.perf_counter()
        hashlib.sha256(data).digest()
        times.append(time.perf_counter() - start)
    return round(mib / min(times))


def main():
    args = sys.argv[1:]
    command = args[0] if args else ""
    if command == "free-port":
        print(free_port())
    elif command == "wrk":
        out({**parse_wrk(args[1]), **extras(args[2:])})
    elif command == "rounds":
        combine_rounds(args[1], args[2], int(args[3]), *args[4:6])
    elif command == "redis-csv":
        out({**parse_redis_csv(args[1]), **extras(args[2:])})
    elif command == "versions":
        out(versions())
    elif command == "probe":
        out(machine_probe(args[1]))
    elif command == "procs":
        pid = int(args[1])
        print(" ".join(str(p) for p in [pid] + children(pid)))
    elif command == "pss":
        print(pss_kib([int(p) for p in args[1:]]))
    elif command == "cpu":
        print(f"{cpu_seconds([int(p) for p in args[1:]]):.2f}")
    elif command == "wait-count":
        sys.exit(0 if wait_count(args[1], args[2], int(args[3]), float(args[4])) else 1)
    elif command == "wait-http":
        host, port, path = split_url(args[1])
        sys.exit(0 if poll_ok(host, port, path, time.monotonic() + float(args[2])) else 1)
    elif command == "trigger":
        out(trigger(int(args[1]), int(args[2]), int(args[3]), int(args[4]), float(args[5])))
    elif command == "trigger-paced":
        out(trigger_paced(int(args[1]), args[2], float(args[3]), float(args[4]), int(args[5])))
    elif command == "trigger-backlog":
        out(trigger_backlog(int(args[1]), int(args[2]), int(args[3])))
    elif command == "trigger-drain":
        out(trigger_drain(int(args[1]), int(args[2])))
    elif command == "cold-picloud":
        out(cold_picloud(args[1], args[2], int(args[3]), args[4]))
    elif command == "cold-nginx":
        out(cold_nginx(args[1], int(args[2])))
    elif command == "deploy-picloud":
        out(deploy_picloud(int(args[1]), args[2], args[3], int(args[4])))
    elif command == "deploy-nginx":
        out(deploy_nginx(args[1], int(args[2])))
    elif command == "other-cores":
        cores = other_cores(args[1]).get(args[2])
        print(f"{cores[0]} cores (kernel threads {cores[1]})" if cores else "?")
    elif command == "mark":
        print(mark(int(args[1])))
    elif command == "facts":
        out(facts(args[1]))
    elif command == "report":
        report(args[1], args[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
