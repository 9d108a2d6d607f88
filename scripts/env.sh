# Sourced by the Makefile's recipes: puts a Swift toolchain installed under /opt/swift on PATH.
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
  export PATH="/opt/swift/usr/bin:$PATH"
fi
# Every release build of PiCloud and its benchmarks: `swift_release build --product picloud`,
# `swift_release run lua-bench`. Run-time exclusivity checks are off in release builds (debug
# builds and the tests keep them): see "Release builds without run-time exclusivity checks" in
# docs/decisions.md.
swift_release() {
  local command=$1
  shift
  swift "$command" -c release -Xswiftc -enforce-exclusivity=unchecked "$@"
}
