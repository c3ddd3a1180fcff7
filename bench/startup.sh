#!/usr/bin/env bash
# Measures how long the broker takes to become ready (process start to the
# time its "tokenbroker serving" log line carries: both listeners are up and
# GET /healthz answers 200, which the script then checks; polling for it
# would add the script's own latency) on a store of 1,000 application tokens (the baseline)
# and on one of STARTUP_TOKENS (default 1,000,000, plus a tenth as many
# authorization tokens), in the same run. The stores are filled straight
# into the file by bench/internal/fillstore (with the audit event of each
# create), which takes about a minute per million tokens instead of the
# API's several: this script is about opening a big file, not creating it.
#
# Four kinds of start, ROUNDS (default 3) of each, interleaved, medians shown:
#   clean               after a SIGTERM (the free-page list was saved)
#   clean, from disk    the same, with the page cache dropped first
#   after SIGKILL       killed right after a write (the list must be rebuilt)
#   SIGKILL, from disk  the same, with the page cache dropped first
# Dropping the page cache needs root (/proc/sys/vm/drop_caches); without it
# the "from disk" rows are left out. Also shown: the CPU the broker used to
# get ready (utime+stime, ticks of 1/CLK_TCK s). Nothing passes or fails on
# time; the table is also written to bench/results/startup-<UTC>.txt.
#
#   bash bench/startup.sh
#   STARTUP_TOKENS=200000 ROUNDS=5 bash bench/startup.sh
#   TOKENBROKER_BIN=/tmp/tokenbroker-old bash bench/startup.sh   # a prebuilt broker
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh # jget, cpu_ticks, wait_serving, serving_addrs
big=${STARTUP_TOKENS:-1000000}
small=1000
rounds=${ROUNDS:-3}
rw_role=b4ed0e9e-67e8-47b6-8b58-c6629be961a9 # "R/W Svc Acct" default role
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tokenbroker-startup.XXXXXX")
pid=
log() { echo "startup.sh: $*" >&2; }
die() { log "$*"; exit 1; }
cleanup() {
  if [[ -n $pid ]]; then kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

if [[ -n ${TOKENBROKER_BIN:-} ]]; then cp "$TOKENBROKER_BIN" "$tmp/tokenbroker"; else go build -o "$tmp/tokenbroker" ./cmd/tokenbroker; fi
go build -o "$tmp/fillstore" ./bench/internal/fillstore
can_drop=no
if sync && { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then can_drop=yes; else log "cannot drop the page cache: no start from disk measured"; fi
drop_cache() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# start DIR: starts the broker, waits for GET /healthz 200; sets pid, http,
# ready_s (seconds) and ready_ticks (CPU used so far).
start() {
  local dir=$1 t0
  : >"$dir/broker.log"
  t0=$(date +%s.%N)
  "$tmp/tokenbroker" serve --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --data "$dir/tb.db" \
    --bootstrap-file "$dir/admin.json" --ui=false >"$dir/broker.log" 2>&1 &
  pid=$!
  wait_serving "$pid" "$dir/broker.log" 120 || die "no broker on $dir"
  local grpc
  read -r grpc http ready_s < <(serving_addrs "$dir/broker.log" "$t0")
  until [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$http/healthz") == 200 ]]; do sleep 0.02; done
  ready_ticks=$(cpu_ticks "$pid")
}
stop_term() { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
# stop_kill DIR: one create (so the file's free-page list is dropped), then SIGKILL.
stop_kill() {
  curl -sS -o /dev/null -X POST "http://$http/v2/clientIdSecrets" -H "Authorization: Bearer $(jget "$1/admin.json" token)" \
    -H 'Content-Type: application/json' -d "{\"roles\":[\"$rw_role\"]}"
  kill -KILL "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

results=$tmp/results.tsv
: >"$results"
for n in "$small" "$big"; do
  dir=$tmp/store-$n
  mkdir -p "$dir"
  start "$dir"; stop_term "$dir" # bootstrap: the organization, its roles, the admin token
  log "filling $n application tokens and $((n / 10)) authorization tokens"
  "$tmp/fillstore" -data "$dir/tb.db" -role "$rw_role" -tokens "$n" -auth $((n / 10)) 2>&1 | sed 's/^/  /' >&2
  printf 'file (MB)\t%s\t%s\n' "$n" "$(($(stat -c %s "$dir/tb.db") / 1000000))" >>"$results"
done
for ((r = 1; r <= rounds; r++)); do
  for n in "$small" "$big"; do
    dir=$tmp/store-$n
    log "round $r, store $n"
    start "$dir"; stop_term "$dir"                         # warm the cache; the list is saved
    start "$dir"; printf 'clean\t%s\t%s %s\n' "$n" "$ready_s" "$ready_ticks" >>"$results"; stop_kill "$dir"
    start "$dir"; printf 'after SIGKILL\t%s\t%s %s\n' "$n" "$ready_s" "$ready_ticks" >>"$results"
    if [[ $can_drop == yes ]]; then
      stop_kill "$dir"; drop_cache
      start "$dir"; printf 'SIGKILL, from disk\t%s\t%s %s\n' "$n" "$ready_s" "$ready_ticks" >>"$results"
      stop_term "$dir"; drop_cache
      start "$dir"; printf 'clean, from disk\t%s\t%s %s\n' "$n" "$ready_s" "$ready_ticks" >>"$results"
    fi
    stop_term "$dir"
  done
done

mkdir -p bench/results
report=bench/results/startup-$(date -u +%Y%m%dT%H%M%SZ).txt
{
  echo "tokenbroker start-up run: $(date -u +%FT%TZ), $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')${TOKENBROKER_BIN:+, broker binary $TOKENBROKER_BIN}"
  echo "stores: $small and $big application tokens (plus a tenth as many authorization tokens, each create with its audit event); $rounds rounds, medians; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  python3 - "$results" "$small" "$big" "$(getconf CLK_TCK)" <<'PY'
import sys
from statistics import median
path, small, big, tck = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
vals, order = {}, []
for line in open(path):
    m, n, v = line.rstrip("\n").split("\t")
    if m not in vals:
        order.append(m); vals[m] = {}
    vals[m].setdefault(n, []).append([float(x) for x in v.split()])
head = ["start", f"{int(small):,} tokens: s (CPU s)", f"{int(big):,} tokens: s (CPU s)", "big / baseline (s)"]
out = []
for m in order:
    cell, mids = [], []
    for n in (small, big):
        xs = vals[m].get(n, [])
        if not xs:
            cell.append("-"); mids.append(None); continue
        s = median(x[0] for x in xs)
        mids.append(s)
        cell.append(f"{s:g}" if len(xs[0]) == 1 else f"{s:.2f} ({median(x[1] for x in xs) / tck:.2f})")
    ratio = f"{mids[1] / mids[0]:.2f}x" if None not in mids and mids[0] else ""
    out.append([m] + cell + [ratio])
w = [max(len(r[i]) for r in out + [head]) for i in range(4)]
for r in [head, ["-" * x for x in w]] + out:
    print("  ".join(c.ljust(w[0]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)))
PY
} | tee "$report"
log "written to $report"
