#!/usr/bin/env bash
# Runs every test suite, each pass on its own so that heavy ones do not skew timing-sensitive
# ones, and all of them even when one fails:
#   1. the Swift suites except the cluster and crash-loop tests (swift test)
#   2. the cluster tests: three picloud processes on one PostgreSQL database (swift test)
#   3. the crash loop: 20 SIGKILLs of a server under load, on SQLite and PostgreSQL (swift test)
#   4. the JavaScript client: type check and node --test against a real server
#   5. the browser tests: the dashboard and the chat example in headless Chromium
#   6. hostile HTTP input: Schemathesis over every route of /openapi.json (Tests/APIFuzz)
# It ends with one line per pass and a total "N passed, N failed" (tests that ran); the exit
# status fails if any pass failed.
set -uo pipefail
cd "$(dirname "$0")/.."
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
status=0
run() { # name command...
  local name=$1
  shift
  "$@" 2>&1 | tee "$logs/$name.log"
  local code=${PIPESTATUS[0]}
  echo "$code" > "$logs/$name.code"
  [ "$code" -eq 0 ] || status=1
}
run swift swift test --skip-build --skip ClusterTests --skip CrashLoopTests
run cluster swift test --skip-build --filter ClusterTests
run faults swift test --skip-build --filter CrashLoopTests
run js clients/js/test/run.sh
run browser python3 Tests/BrowserTests/run.py
run fuzz Tests/APIFuzz/run.sh

python3 - "$logs" <<'PY'
import pathlib, re, sys
logs = pathlib.Path(sys.argv[1])
total_passed = total_failed = 0
for name in ("swift", "cluster", "faults", "js", "browser", "fuzz"):
    text = re.sub(r"\x1b\[[0-9;]*m", "", (logs / f"{name}.log").read_text(errors="replace"))
    code = int((logs / f"{name}.code").read_text())
    passed = failed = 0
    if name in ("swift", "cluster", "faults"):
        # Swift Testing: one line per test that passed or failed (parameterized tests count once).
        passed = len(re.findall(r"^\S+ Test \".*\" (?:with \d+ test cases? )?passed after", text, re.M))
        failed = len(re.findall(r"^\S+ Test \".*\" (?:with \d+ test cases? )?failed after", text, re.M))
    elif name == "js":
        passed = sum(int(n) for n in re.findall(r"^# pass (\d+)", text, re.M))
        failed = sum(int(n) for n in re.findall(r"^# fail (\d+)", text, re.M))
    else:
        match = re.findall(r"^(\d+) passed, (\d+) failed$", text, re.M)
        if match:
            passed, failed = map(int, match[-1])
    if code != 0 and failed == 0:
        failed = 1  # the pass failed without a failing test (a crash, a build or setup error)
    total_passed += passed
    total_failed += failed
    print(f"{name}: {passed} passed, {failed} failed")
print(f"{total_passed} passed, {total_failed} failed")
PY
exit $status
