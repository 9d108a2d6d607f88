"""bench/soak: turns the samples into bench/results/soak-<date>.{csv,md} (standard library only).

Growth is the least-squares slope over the second half of the run (after caches, the topic
history and the SQLite page cache have filled), per minute and relative to the mean there."""
import csv, datetime, pathlib, re, shutil, sys

samples_path, wrk_path, final_depth, duration, connections, subscribers, sample, received = sys.argv[1:9]
rows = list(csv.DictReader(open(samples_path)))
wrk = open(wrk_path).read()
results = pathlib.Path("bench/results")
stamp = datetime.datetime.now(datetime.timezone.utc)
date = stamp.strftime("%Y-%m-%d")
shutil.copy(samples_path, results / f"soak-{date}.csv")


def slope(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return (sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else 0.0), my


half = rows[len(rows) // 2:]
xs = [float(r["seconds"]) / 60 for r in half]
lines = []
verdicts = []
for column, unit, limit in (("rss_kib", "KiB", 0.02), ("open_files", "files", 0.02), ("outbox_depth", "events", None)):
    ys = [float(r[column]) for r in half]
    per_minute, mean = slope(xs, ys)
    relative = per_minute / mean if mean else 0.0
    first, last = float(rows[0][column]), float(rows[-1][column])
    ok = (abs(relative) <= limit) if limit is not None else (max(ys) < 5000)
    verdicts.append(ok)
    lines.append(f"| {column} | {first:,.0f} | {min(float(r[column]) for r in rows):,.0f} | {max(float(r[column]) for r in rows):,.0f} | {last:,.0f} | "
                 f"{per_minute:+,.1f} {unit}/min ({relative * 100:+.2f} %/min) | {'no growth' if ok else 'GROWS'} |")

requests = re.search(r"(\d+) requests in", wrk)
rate = re.search(r"Requests/sec:\s+([\d.]+)", wrk)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
socket_errors = re.search(r"Socket errors: (.*)", wrk)
handler_errors = int(rows[-1]["handler_errors"]) if rows else 0
errors_ok = not non2xx and not socket_errors and handler_errors == 0
verdicts.append(errors_ok)
verdicts.append(int(float(final_depth)) < 100)

md = f"""# Soak (bench/soak/run.sh, {date})

{int(duration) / 60:g} minutes of mixed load against the release binary on its default SQLite store
(`synchronous=full`): `wrk -t2 -c{connections}` cycling over kv reads (3 of 8 requests), durable kv
writes whose trigger runs (2 of 8), a document insert + query (+ a delete every tenth), a 4–8 KiB file
overwritten in a ring of 50 names, and a publish to a topic {subscribers} `curl -N` subscribers
follow. A sample every {sample} s:
[`soak-{date}.csv`](soak-{date}.csv). Run at {stamp.strftime('%H:%M')} UTC on the 2-core development machine.

**Verdict: {'no growth, no errors' if all(verdicts) else 'see below'}.**

- Requests: {requests.group(1) if requests else '?'} ({float(rate.group(1)) if rate else 0:,.0f}/s); non-2xx answers: {non2xx.group(1) if non2xx else 0};
  socket errors: {socket_errors.group(1) if socket_errors else 'none'}; handler errors: {handler_errors}.
- Trigger runs counted by the app: {rows[-1]['triggered'] if rows else '?'}; outbox depth after the load stopped: {final_depth}.
- Events received by the {subscribers} subscribers: {received}.

| sampled | first | min | max | last | trend over the second half | |
|---|---|---|---|---|---|---|
""" + "\n".join(lines) + "\n"
(results / f"soak-{date}.md").write_text(md)
print(md)
sys.exit(0 if all(verdicts) else 1)
