#!/usr/bin/env bash
# Runs each libFuzzer target (Sources/SluiceFuzz) for SECONDS (default 60) from the committed
# seed corpus (Fuzz/corpus/TARGET): json-reader, manifest, stream-splitter, kubeconfig and
# netlink-reply. A crash, a sanitizer report, an exit or a reader that disagrees with
# JSONDecoder fails the run; the reproducer is left in .build-fuzz/artifacts and can be
# replayed with `swift run sluice-fuzz TARGET FILE`, then committed as a regression seed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
scratch=.build-fuzz
mkdir -p "$scratch/artifacts"
# `-Xswiftc -sanitize=fuzzer,address` after `--sanitize fuzzer`: SwiftPM's `--sanitize fuzzer
# --sanitize address` gives the driver two flags in no fixed order, and the last one wins
# (no coverage at all when it is address).
if ! swift build -c release --product sluice-fuzz --sanitize fuzzer -Xswiftc -sanitize=fuzzer,address \
    -Xcc -fsanitize=address -Xswiftc -DFUZZING --scratch-path "$scratch" >"$scratch/build.log" 2>&1; then
  grep -E "error:" "$scratch/build.log" >&2 || tail -20 "$scratch/build.log" >&2
  echo "fuzz.sh: building the fuzz targets failed (log $scratch/build.log)" >&2
  exit 1
fi
bin="$scratch/release/sluice-fuzz"
status=0
for target in json-reader manifest stream-splitter kubeconfig netlink-reply; do
  work="$scratch/corpus/$target"
  mkdir -p "$work"
  cp Fuzz/corpus/"$target"/* "$work"/
  case "$target" in                     # a dictionary per input language; netlink bytes have none
    kubeconfig) dict=(-dict=Fuzz/kubeconfig.dict) ;;
    netlink-reply) dict=() ;;
    *) dict=(-dict=Fuzz/json.dict) ;;
  esac
  echo "fuzz.sh: $target for ${seconds}s"
  if ! SLUICE_FUZZ_TARGET="$target" "$bin" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=4096 \
      -artifact_prefix="$scratch/artifacts/$target-" -print_final_stats=1 "${dict[@]}" "$work" 2>"$scratch/$target.log"; then
    tail -40 "$scratch/$target.log" >&2
    echo "fuzz.sh: $target FAILED (log $scratch/$target.log, reproducer in $scratch/artifacts)" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|cov:" "$scratch/$target.log" | tail -2
  fi
done
exit "$status"
