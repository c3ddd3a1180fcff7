#!/usr/bin/env bash
# Measures durable creates (TokenService/CreateToken) at 64 concurrent gRPC
# callers over 4 connections, on a store of SMALL (default 10,000)
# application tokens against one of BIG (default 1,000,000), in ROUNDS
# (default 3) interleaved rounds whose order alternates. Each round runs
# both load clients of CLIENTS (default "grpcload ghz"): grpcload
# (bench/internal/grpcload: generated stubs and grpc-go's client, as a
# service calls the broker) and ghz (requests built from JSON through
# dynamic messages, several times grpcload's own CPU per call). Both share
# the 2 cores with the broker, so what each costs per call is printed next
# to the broker's.
#
# Each cell starts the broker on a fresh copy of the filled store (so
# creates of earlier cells never grow the small one), creates for DURATION
# (default 5s) and records the rate, the p99, the broker's CPU per create
# (from /proc) and the client's (bash's `times` around its run). Each round
# also measures, with the same client and settings, the empty call of
# bench/baseline (grpc.health.v1 on a bare grpc-go server): the machine's
# capacity for a do-nothing call in that round, the baseline for the create
# rate.
#
# The stores are filled straight into the file by bench/internal/fillstore
# (each token shaped as the broker makes it, with its audit event), so the
# big one takes about a minute rather than the fill through the API of
# bench/scale.sh. Nothing passes or fails on time; the tables are also
# written to bench/results/creates-<UTC timestamp>.txt (git-ignored).
#
#   bash bench/creates.sh
#   ROUNDS=5 DURATION=10s CLIENTS=grpcload bash bench/creates.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh # cpu_ticks, jget, ghzsum, children_cpu_s, wait_serving, serving_addrs, stop_broker
root=$PWD
small=${SMALL:-10000}
big=${BIG:-1000000}
rounds=${ROUNDS:-3}
duration=${DURATION:-5s}
read -r -a clients <<<"${CLIENTS:-grpcload ghz}"
rw_role=b4ed0e9e-67e8-47b6-8b58-c6629be961a9 # "R/W Svc Acct" default role
bin=$root/tools/bin
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tokenbroker-creates.XXXXXX")
pid=
baseline_pid=

log() { echo "creates.sh: $*" >&2; }
die() { log "$*"; exit 1; }
trap 'stop_broker; [[ -z $baseline_pid ]] || kill "$baseline_pid" 2>/dev/null; rm -rf "$tmp"' EXIT

log "building tokenbroker, fillstore, grpcload and baseline into $tmp; installing ghz (tools/load/go.mod)"
go build -o "$tmp/tokenbroker" ./cmd/tokenbroker
go build -o "$tmp/fillstore" ./bench/internal/fillstore
go build -o "$tmp/grpcload" ./bench/internal/grpcload
go build -o "$tmp/baseline" ./bench/baseline
mkdir -p "$bin"
(cd tools/load && GOBIN="$bin" go install tool)
clk_tck=$(getconf CLK_TCK)

# client_us CALLS: the load client's CPU µs per call between $tmp/times0 and
# $tmp/times1, two outputs of `times` around one ghz run in this shell.
client_us() { python3 -c 'import sys; print(f"{float(sys.argv[1]) * 1e6 / int(sys.argv[2]):.0f}")' "$(children_cpu_s "$tmp/times0" "$tmp/times1")" "$1"; }

# start DIR: starts the broker on DIR/run.db; sets pid and grpc.
start() {
  local dir=$1 t0 http secs
  t0=$(date +%s.%N)
  "$tmp/tokenbroker" serve --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --data "$dir/run.db" \
    --bootstrap-file "$dir/admin.json" --ui=false >"$dir/broker.log" 2>&1 &
  pid=$!
  wait_serving "$pid" "$dir/broker.log" 60 || die "no broker on $dir"
  read -r grpc http secs < <(serving_addrs "$dir/broker.log" "$t0")
}

"$tmp/baseline" --addr 127.0.0.1:0 >"$tmp/baseline.log" 2>&1 &
baseline_pid=$!
until grep -q '^listening on ' "$tmp/baseline.log"; do
  kill -0 "$baseline_pid" 2>/dev/null || { cat "$tmp/baseline.log" >&2; die "the baseline exited"; }
  sleep 0.05
done
baseline_addr=$(sed -n 's/^listening on //p' "$tmp/baseline.log")

for n in "$small" "$big"; do
  dir=$tmp/store-$n
  mkdir -p "$dir"
  start "$dir"; stop_broker # bootstrap: the organization, its roles, the admin token
  log "filling $n application tokens"
  "$tmp/fillstore" -data "$dir/run.db" -role "$rw_role" -tokens "$n" -auth 0 2>&1 | sed 's/^/  /' >&2
  start "$dir"; stop_broker # a clean close: the free-page list is saved
  mv "$dir/run.db" "$dir/filled.db"
done

results=$tmp/results.tsv
: >"$results"
# --duration-stop ignore: the calls still in flight when the time is up
# are neither counted nor reported as failures (grpcload does the same).
g=("$bin/ghz" --insecure -c 64 --connections 4 -O json --duration-stop ignore)

# load CLIENT OUT ADDR empty|create [TOKEN]: one run of CLIENT for
# $duration, its JSON report in OUT; "calls/s p99_s errors calls" on stdout.
load() {
  local client=$1 out=$2 addr=$3 what=$4 token=${5:-}
  if [[ $client == ghz && $what == empty ]]; then
    "${g[@]}" --proto bench/ghz/health.proto --call grpc.health.v1.Health/Check -z "$duration" "$addr" >"$out"
  elif [[ $client == ghz ]]; then
    "${g[@]}" -m "{\"authorization\":\"Bearer $token\"}" --call tokenbroker.v1.TokenService/CreateToken \
      -d "{\"roles\":[\"$rw_role\"],\"description\":\"bench\"}" -z "$duration" "$addr" >"$out" || true
  elif [[ $what == empty ]]; then
    "$tmp/grpcload" -addr "$addr" -call health -c 64 -conns 4 -duration "$duration" >"$out"
  else
    "$tmp/grpcload" -addr "$addr" -call create -token "$token" -role "$rw_role" -c 64 -conns 4 -duration "$duration" >"$out"
  fi
}
# loadsum CLIENT OUT: "calls/s p99_s errors calls" of one run's report.
loadsum() {
  if [[ $1 == ghz ]]; then ghzsum "$2"; return; fi
  python3 - "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{r['rps']:.0f} {r['p99']:.6f} {sum(r['errors'].values())} {r['count']}")
PY
}

for ((r = 1; r <= rounds; r++)); do
  order=("$small" "$big")
  ((r % 2)) || order=("$big" "$small")
  for client in "${clients[@]}"; do
    log "round $r, $client: the empty call"
    times >"$tmp/times0"
    load "$client" "$tmp/empty.json" "$baseline_addr" empty
    times >"$tmp/times1"
    read -r rps p99 errs calls < <(loadsum "$client" "$tmp/empty.json")
    printf '%s\tempty\t%s\t%s\t%s\t%s\t%s\n' "$client" "$r" "$rps" "$p99" "-" "$(client_us "$calls")" >>"$results"
    for n in "${order[@]}"; do
      dir=$tmp/store-$n
      cp "$dir/filled.db" "$dir/run.db"
      start "$dir"
      log "round $r, $client: creates for $duration on the $n-token store"
      before=$(cpu_ticks "$pid")
      times >"$tmp/times0"
      load "$client" "$dir/load.json" "$grpc" create "$(jget "$dir/admin.json" token)"
      times >"$tmp/times1"
      after=$(cpu_ticks "$pid")
      read -r rps p99 errs calls < <(loadsum "$client" "$dir/load.json")
      ((errs == 0)) || log "round $r, $client, store $n: $errs failed creates"
      cpu_us=$(((after - before) * 1000000 / clk_tck / calls))
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$client" "$n" "$r" "$rps" "$p99" "$cpu_us" "$(client_us "$calls")" >>"$results"
      stop_broker
    done
  done
done

mkdir -p bench/results
report=bench/results/creates-$(date -u +%Y%m%dT%H%M%SZ).txt
{
  echo "tokenbroker create run: $(date -u +%FT%TZ), $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "c=64 over 4 connections, $duration per cell, $rounds interleaved rounds, clients: ${clients[*]}; stores filled by bench/internal/fillstore"
  python3 - "$results" "$small" "$big" <<'PY'
import sys
from statistics import median
path, small, big = sys.argv[1], sys.argv[2], sys.argv[3]
cells = {}  # client -> what -> round -> (rps, p99 ms, broker µs, client µs)
for line in open(path):
    client, what, r, rps, p99, cpu, cl = line.rstrip("\n").split("\t")
    cells.setdefault(client, {}).setdefault(what, {})[int(r)] = (float(rps), float(p99) * 1e3, cpu, cl)
for client, c in cells.items():
    rounds = sorted(c["empty"])
    def col(what, i):
        return [c[what][r][i] for r in rounds]
    print()
    print(f"load client: {client}")
    print()
    print("| | " + " | ".join(f"round {r}" for r in rounds) + " | median |")
    print("|---|" + "---|" * (len(rounds) + 1))
    rows = [
        ("empty call (bench/baseline Health), calls/s", "empty", 0),
        (f"creates/s, {int(small):,}-token store", small, 0),
        (f"creates/s, {int(big):,}-token store", big, 0),
        (f"p99 ms, {int(small):,}-token store", small, 1),
        (f"p99 ms, {int(big):,}-token store", big, 1),
        (f"broker CPU µs per create, {int(small):,}-token store", small, 2),
        (f"broker CPU µs per create, {int(big):,}-token store", big, 2),
        (f"{client} CPU µs per empty call", "empty", 3),
        (f"{client} CPU µs per create, {int(small):,}-token store", small, 3),
        (f"{client} CPU µs per create, {int(big):,}-token store", big, 3),
    ]
    for label, what, i in rows:
        nums = [float(v) for v in col(what, i)]
        fmt = (lambda v: f"{v:,.0f}") if i != 1 else (lambda v: f"{v:.1f}")
        print(f"| {label} | " + " | ".join(fmt(v) for v in nums) + f" | {fmt(median(nums))} |")
    ratio = [c[small][r][0] / c[big][r][0] for r in rounds]
    print("| creates/s, small ÷ big store (same round) | " + " | ".join(f"{v:.2f}×" for v in ratio) + f" | {median(ratio):.2f}× |")
    share = [c[small][r][0] / c["empty"][r][0] for r in rounds]
    print(f"| creates/s ({int(small):,}) ÷ empty call/s (same round) | " + " | ".join(f"{v:.2f}×" for v in share) + f" | {median(share):.2f}× |")
PY
} | tee "$report"
log "written to $report"
