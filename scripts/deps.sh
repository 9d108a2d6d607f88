#!/usr/bin/env bash
# Installs the system packages PiCloud needs, only when something is missing.
#   scripts/deps.sh run    what building and running needs
#   scripts/deps.sh test   that, plus what the test suite needs
set -euo pipefail
purpose=${1:-run}

need=()
pkg-config --exists lua5.4 2>/dev/null || need+=(liblua5.4-dev)
pkg-config --exists sqlite3 2>/dev/null || need+=(libsqlite3-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
if [ "$purpose" = test ]; then
  command -v lua5.4 >/dev/null || need+=(lua5.4)
  # A PostgreSQL server for the PostgreSQL backend's tests (scripts/with-postgres.sh starts a private one).
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  # The JavaScript client's tests and type check, and the browser tests (headless Chromium).
  command -v node >/dev/null || need+=(nodejs)
  command -v tsc >/dev/null || need+=(node-typescript)
  command -v chromium >/dev/null || need+=(chromium)
  command -v chromedriver >/dev/null || need+=(chromium-driver)
  /usr/bin/python3 -c "import selenium" 2>/dev/null || need+=(python3-selenium)
  # Schemathesis (Tests/APIFuzz) comes from PyPI into a virtual environment.
  /usr/bin/python3 -c "import ensurepip, venv" 2>/dev/null || need+=(python3-venv)
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "deps: installing ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! command -v swift >/dev/null; then
  echo "deps: the Swift 6 toolchain is not on PATH (see https://www.swift.org/install/linux/)" >&2
  exit 1
fi
