# Shared by the benchmark scripts (sourced). Starts the release picloud binary in the background:
#   start_picloud LOG DATA_DIR [serve arguments...]   → sets $server (pid) and $port
start_picloud() {
  local log=$1 data=$2
  shift 2
  .build/release/picloud serve --port 0 --data-dir "$data" "$@" 2>"$log" &
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
