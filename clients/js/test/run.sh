#!/bin/sh
# Checks and tests @picloud/client: the types (tsc --noEmit) and every test file (node --test,
# against a real `picloud serve`: .build/debug/picloud, or PICLOUD_BIN). Run from anywhere.
# Exit status: 0 when everything passed.
set -u
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root" || exit 1
status=0

if command -v tsc >/dev/null 2>&1; then
  echo "== tsc --noEmit -p clients/js ($(tsc --version))"
  if tsc --noEmit -p clients/js; then echo "tsc: ok"; else echo "tsc: FAILED"; status=1; fi
elif [ -n "${CI:-}" ]; then
  echo "tsc: not installed, and CI is set: failing (apt-get install node-typescript, or npm i -g typescript)"
  status=1
else
  echo "tsc: not installed, type check SKIPPED (apt-get install node-typescript)"
fi

if [ -z "${PICLOUD_BIN:-}" ] && [ ! -x .build/debug/picloud ]; then
  echo "== building picloud (the tests run a real server)"
  [ -f scripts/env.sh ] && . scripts/env.sh
  swift build --product picloud || { echo "swift build failed"; exit 1; }
fi

echo "== node --test clients/js/test ($(node --version))"
# The *.test.js files: test/helpers/ holds no tests (node --test clients/js/test/ would list it as one).
node --test clients/js/test/*.test.js || status=1
exit $status
