#!/usr/bin/env bash
# What metrics cost on the Check path, measured, not asserted: BenchmarkCheck
# with metrics on and off (TOKENBROKER_BENCH_NO_METRICS), interleaved in one
# run so that the machine's noise hits both alike. Optionally also a test
# binary built from an older commit (BEFORE=path/to/bench.test).
#
#   bash bench/metrics-cost.sh                 # 3 rounds of 2 s per benchmark
#   ROUNDS=5 BENCHTIME=5s bash bench/metrics-cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
benchtime=${BENCHTIME:-2s}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go test -c -o "$dir/bench.test" ./bench/
echo "machine: $(nproc) cores, $(go version | cut -d' ' -f3), $(date -u +%FT%TZ)"
run() { # label binary [env]
  local label=$1 bin=$2; shift 2
  (cd bench && env "$@" "$bin" -test.run '^$' -test.bench '^BenchmarkCheck$' -test.benchtime "$benchtime" -test.benchmem) |
    awk -v l="$label" '/^BenchmarkCheck/ {printf "%-12s %s\n", l, $0}'
}
for r in $(seq "$rounds"); do
  echo "== round $r"
  [[ -n "${BEFORE:-}" ]] && run before "$BEFORE"
  run metrics-on "$dir/bench.test"
  run metrics-off "$dir/bench.test" TOKENBROKER_BENCH_NO_METRICS=1
done
