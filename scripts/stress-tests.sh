#!/usr/bin/env bash
# Runs the README's test suite (`swift test --no-parallel`; not scripts/test-image.sh) three
# times in a row while a CPU hog keeps every core busy, and fails if any run fails. Tests must
# prove behaviour by waiting for events, not by racing the clock: on a loaded machine a sleep
# or a fixed count that "usually" covers an event stops covering it.
#
#   scripts/stress-tests.sh [RUNS] [-- extra swift test arguments, e.g. --filter SluiceDatapathTests]
#
# Run as root (the kernel tests create their own network namespaces). The suite is built once
# (debug) before the hogs start, so the runs load the tests, not the compiler (each run's
# `swift test` then finds nothing to build). Namespaces left behind are reported. Not run by CI.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
if [ $# -gt 0 ] && [ "$1" != "--" ]; then runs=$1; shift; fi
[ "${1:-}" = "--" ] && shift
extra=("$@")

[ "$(id -u)" -eq 0 ] || { echo "stress-tests.sh: must run as root (kernel tests are never skipped)" >&2; exit 1; }

swift build --build-tests
before=$(ip netns list | awk '{print $1}' | sort)

hogs=()
stop_hogs() {
  for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${hogs[@]}"; do wait "$pid" 2>/dev/null || true; done
  hogs=()
}
trap stop_hogs EXIT
trap 'exit 130' INT TERM

cores=$(nproc)
for _ in $(seq "$cores"); do
  yes > /dev/null &
  hogs+=("$!")
done
echo "stress-tests.sh: ${#hogs[@]} CPU hog(s) running on $cores core(s): ${hogs[*]}"

failed=0
for i in $(seq "$runs"); do
  echo "=== stress run $i/$runs: swift test --no-parallel ${extra[*]:-}"
  start=$(date +%s)
  if swift test --no-parallel ${extra[@]+"${extra[@]}"}; then
    echo "=== stress run $i/$runs passed in $(( $(date +%s) - start )) s"
  else
    echo "=== stress run $i/$runs FAILED after $(( $(date +%s) - start )) s"
    failed=$((failed + 1))
  fi
done

stop_hogs
after=$(ip netns list | awk '{print $1}' | sort)
leftover=$(comm -13 <(echo "$before") <(echo "$after") | grep -v '^$' || true)
if [ -n "$leftover" ]; then
  # A warning only: other test runs on the same machine may own them (.ci/run fails on it).
  echo "stress-tests.sh: warning: network namespaces appeared during the runs and are still there:" >&2
  echo "$leftover" >&2
fi
if [ "$failed" -ne 0 ]; then
  echo "stress-tests.sh: $failed failure(s) in $runs runs under load" >&2
  exit 1
fi
echo "stress-tests.sh: all $runs runs passed under load"
