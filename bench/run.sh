#!/usr/bin/env bash
# Prints tokenbroker's measured figures. Every load figure is reported next to
# a baseline measured in the same run on the same machine (an empty gRPC
# handler behind the same server), because absolute numbers on a shared
# 2-core machine are noise. Nothing here passes or fails: it only measures.
#
#   bash bench/run.sh              # default: 5 s per benchmark, 3 runs
#   BENCHTIME=2s COUNT=1 bash bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime=${BENCHTIME:-5s}
count=${COUNT:-3}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

echo "machine: $(nproc) cores, $(go version | cut -d' ' -f3), $(date -u +%FT%TZ)"
echo "running: go test -run '^\$' -bench . -benchtime $benchtime -count $count ./bench/ ./store/bolt/ ./server/policy/"
go test -run '^$' -bench . -benchtime "$benchtime" -count "$count" ./bench/ ./store/bolt/ ./server/policy/ | tee "$out" | grep -E '^(Benchmark|ok|FAIL)' >&2

python3 - "$out" <<'PY'
import re, sys, statistics
runs, allocs = {}, {}
for line in open(sys.argv[1]):
    m = re.match(r'^(Benchmark\S+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op(.*)$', line)
    if not m:
        continue
    name, nsop, rest = m.group(1), float(m.group(3)), m.group(4)
    metric = re.search(r'([\d.]+) (calls/s|tokens/s|reads/s)', rest)
    runs.setdefault(name, []).append((nsop, float(metric.group(1)) if metric else None, metric.group(2) if metric else None))
    a = re.search(r'(\d+) allocs/op', rest)
    if a:
        allocs[name] = int(a.group(1))

def med(name, i):
    vals = [r[i] for r in runs.get(name, []) if r[i] is not None]
    return statistics.median(vals) if vals else None

def versus(group, base, names, i, show):
    """show(name, median, ratio to base's median) for each benchmark of group
    that ran; i picks the figure (0: ns/op, 1: the reported rate)."""
    b = med(f"{group}/{base}", i)
    for name in names:
        v = med(f"{group}/{name}", i)
        if v is not None:
            show(name, v, v / b if b else None)

print("\n== gRPC over loopback, 64 concurrent callers (median of runs)")
versus("BenchmarkGRPC", "EmptyHandler", ["EmptyHandler", "AuthenticatedRead", "CreateToken"], 1,
       lambda n, v, r: print(f"  {n:<20} {v:>10,.0f} calls/s   " + (f"{r:6.2f}x of baseline" if r else "")))
print("  (EmptyHandler = grpc.health.v1 Check through the same interceptors: the baseline)")
print("  target: CreateToken >= 5,000 durable creations/s")

print("\n== REST handler in process, no socket (median of runs; allocations are exact)")
versus("BenchmarkRESTHandler", "Bare", ["Bare", "Healthz", "CheckXCassandraToken", "CheckBearer"], 0,
       lambda n, v, r: print(f"  {n:<22} {v:>10,.0f} ns/op {allocs.get('BenchmarkRESTHandler/' + n, 0):>5} allocs/op   "
                             + (f"{r:6.2f}x the bare handler's time" if r else "")))
print("  (Bare = bench/internal/bare, the handler bench/load.sh serves as the REST baseline)")

print("\n== store (bbolt on this disk), no gRPC")
for name, runs_ in sorted(runs.items()):
    if not name.startswith(("BenchmarkCreateToken", "BenchmarkGetToken")):
        continue
    v = med(name, 1); unit = runs_[0][2] or ""
    print(f"  {name:<40} {v:>12,.0f} {unit}" if v else f"  {name:<40} {med(name, 0):>12,.0f} ns/op")
print("\n== policy evaluation")
for name in sorted(runs):
    if name.startswith("BenchmarkAllows"):
        print(f"  {name:<40} {med(name, 0):>8.0f} ns/op")
PY
