# Shared by the benchmark scripts (sourced). Starts the release picloud binary in the background:
#   start_picloud LOG DATA_DIR [serve arguments...]   → sets $server (pid) and $port
#   PICLOUD_BIN=path (another binary)  PICLOUD_ENV="NAME=value ..." (settings for it alone)
start_picloud() {
  local log=$1 data=$2
  shift 2
  env ${PICLOUD_ENV:-} "${PICLOUD_BIN:-.build/release/picloud}" serve --port 0 --data-dir "$data" "$@" 2>"$log" &
  server=$!
  for _ in $(seq 100); do
    port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    [ -n "$port" ] && return 0
    sleep 0.1
  done
  echo "picloud did not start:"; cat "$log"; exit 1
}

# quantiles METRICS_FILE HISTOGRAM → "p50_ms p99_ms": upper bounds of the buckets holding them.
quantiles() {
  python3 - "$1" "$2" <<'PY'
import sys
buckets = []
for line in open(sys.argv[1]).read().splitlines():
    if line.startswith(sys.argv[2] + "_bucket"):
        le = line.split('le="')[1].split('"')[0]
        buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
total = buckets[-1][1]
def quantile(q):
    for le, count in buckets:
        if count >= q * total:
            return le * 1000
print(f"{quantile(0.5):g} {quantile(0.99):g}")
PY
}

# Installs wrk from Debian when it is missing.
need_wrk() {
  command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
}

# wrk_summary WRK_OUTPUT_FILE → "rps p50_ms p99_ms max_ms" (wrk run with --latency); fails, printing
# the output, when any answer was not 2xx/3xx.
wrk_summary() {
  python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"^\s*50%\s+(\S+)", text, re.M).group(1))
p99 = ms(re.search(r"^\s*99%\s+(\S+)", text, re.M).group(1))
peak = ms(re.search(r"^\s*Latency\s+\S+\s+\S+\s+(\S+)", text, re.M).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
if errors: sys.exit(f"{errors.group(1)} failed requests:\n{text}")
print(f"{rps:.0f} {p50:.2f} {p99:.2f} {peak:.1f}")
PY
}
