#!/usr/bin/env bash
# ThreadSanitizer run of the suites where Sluice's own concurrency lives: the daemon (the sync
# loop actor, the inbox its sources fill from their own executors, the HTTP servers, the
# metrics read across threads), the API client and its reflectors, and the netlink layer
# (streamed commits on a second thread). Builds into .build-tsan; any ThreadSanitizer report
# fails the run (halt_on_error, and the output is checked too: a report in a child process
# does not always fail the parent).
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=.build-tsan
mkdir -p "$scratch"
if ! swift build --build-tests --sanitize=thread --scratch-path "$scratch" >"$scratch/build.log" 2>&1; then
  grep -E "error:" "$scratch/build.log" >&2 || tail -20 "$scratch/build.log" >&2
  echo "sanitize.sh: the ThreadSanitizer build failed (log $scratch/build.log)" >&2
  exit 1
fi
set +e
TSAN_OPTIONS="halt_on_error=1 ${TSAN_OPTIONS:-}" swift test --skip-build --sanitize=thread --scratch-path "$scratch" \
  --no-parallel --filter "SluiceDaemonTests|SluiceKubeTests|SluiceNetlinkTests" 2>&1 | tee "$scratch/test.log"
status=${PIPESTATUS[0]}
set -e
if grep -q "WARNING: ThreadSanitizer" "$scratch/test.log"; then
  echo "sanitize.sh: ThreadSanitizer reported a data race (log $scratch/test.log)" >&2
  exit 1
fi
[ "$status" -eq 0 ] || echo "sanitize.sh: the suites failed under ThreadSanitizer (log $scratch/test.log)" >&2
exit "$status"
