#!/usr/bin/env bash
# Load-tests a real tokenbroker process over loopback with real clients (ghz
# or grpcload for gRPC, hey for REST) and prints one table. Every figure is shown next to
# a baseline measured in the same run, on the same machine, with the same
# client settings: for gRPC an empty grpc-go server (bench/baseline: only
# grpc.health.v1, no interceptors), for REST a bare net/http JSON handler
# (bench/baseline --http-addr: decode the body, encode a fixed answer).
# Nothing here passes or fails on timing; the script exits non-zero only if
# something is broken (a setup step fails, a call returns an error).
#
#   bash bench/load.sh                   # 3 rounds of 4 s per scenario, about 5 minutes in all
#   DURATION=2s ROUNDS=5 bash bench/load.sh
#   LOGIN_COUNT=100 CONNECTIONS=4 bash bench/load.sh
#   ONLY=rest bash bench/load.sh         # only the REST rows (ONLY=grpc: only the gRPC rows)
#   TOKENBROKER_BIN=/tmp/tb-old ONLY=rest bash bench/load.sh  # a prebuilt broker (old vs new)
#   GRPC_CLIENT=grpcload ONLY=grpc bash bench/load.sh       # gRPC rows through grpcload instead of ghz
#
# Each Check scenario and its baseline run ROUNDS times (default 3),
# interleaved: a round runs the baseline, then the group's other scenarios
# in an order that rotates from round to round, so that no scenario always
# follows the baseline or always runs last. The table shows the median of
# the rounds for each figure, and each ratio or difference is the median of
# the per-round comparisons against the baseline of the same round: the
# machine's load moves from second to second, and a comparison within one
# round is the one that load moves least. The logins run once, last.
#
# ONLY=rest runs the bare handler, /healthz and both REST Checks; ONLY=grpc
# the gRPC rows and the logins. Each group always runs with its own
# baseline. TOKENBROKER_BIN is served instead of a build of this tree, so
# two binaries can be measured alternately (interleaved rounds) with the
# same script, baseline and clients.
#
# GRPC_CLIENT picks the gRPC load client: ghz (default; it builds every
# request from JSON through dynamic messages, 40-110 us of its own CPU per
# call here) or grpcload (bench/internal/grpcload: generated stubs and
# grpc-go's client, as a calling service would, a fraction of that). Both
# share the cores with the servers; the table shows each one's CPU per call.
#
# Needs Go, curl and python3. ghz and hey (pinned in tools/load/go.mod) are
# installed into tools/bin. The table is also written to
# bench/results/load-<UTC timestamp>.txt (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh # cpu_ticks, jget, children_cpu_s
root=$PWD

duration=${DURATION:-4s}           # each duration-bound run (ghz -z, hey -z)
rounds=${ROUNDS:-3}                # interleaved rounds of the Check groups
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "load.sh: ROUNDS must be a positive integer, not $rounds" >&2; exit 2; }
round=1                            # the round being run (the logins count as round 1)
only=${ONLY:-}                     # "", "rest" or "grpc"
case $only in "" | rest | grpc) ;; *) echo "load.sh: ONLY must be rest or grpc, not $only" >&2; exit 2 ;; esac
run_grpc() { [[ $only != rest ]]; }
run_rest() { [[ $only != grpc ]]; }
login_count=${LOGIN_COUNT:-200}    # database-user logins per run (argon2id: slow on purpose)
connections=${CONNECTIONS:-4}      # gRPC connections at c=50 (c=1 uses one)
grpc_client=${GRPC_CLIENT:-ghz}    # ghz or grpcload
case $grpc_client in ghz | grpcload) ;; *) echo "load.sh: GRPC_CLIENT must be ghz or grpcload, not $grpc_client" >&2; exit 2 ;; esac
rw_role=b4ed0e9e-67e8-47b6-8b58-c6629be961a9 # "R/W Svc Acct" default role
action=db-table-select
started=$(date +%s)

bin=$root/tools/bin
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tokenbroker-load.XXXXXX")
server_pids=()
load_pid=

# stop kills one process we started: SIGTERM (graceful drain), SIGKILL after 10 s.
stop() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local pid
  if [[ -n $load_pid ]]; then stop "$load_pid"; fi
  for pid in "${server_pids[@]}"; do stop "$pid"; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

log() { echo "load.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# ---------------------------------------------------------------- 1. build
if [[ -n ${TOKENBROKER_BIN:-} ]]; then
  log "serving $TOKENBROKER_BIN; building bench/baseline into $tmp"
  cp "$TOKENBROKER_BIN" "$tmp/tokenbroker"
else
  log "building tokenbroker and bench/baseline into $tmp"
  go build -o "$tmp/tokenbroker" ./cmd/tokenbroker
fi
go build -o "$tmp/baseline" ./bench/baseline
go build -o "$tmp/grpcload" ./bench/internal/grpcload
log "installing ghz and hey (tools/load/go.mod) into tools/bin"
mkdir -p "$bin"
(cd tools/load && GOBIN="$bin" go install tool)



# ---------------------------------------------------------------- 2. servers
# Port 0 everywhere: each server picks a free loopback port and logs it.
"$tmp/tokenbroker" serve --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 \
  --data "$tmp/data/tokenbroker.db" --bootstrap-file "$tmp/data/admin.json" \
  >"$tmp/broker.log" 2>&1 &
broker_pid=$!
server_pids+=("$broker_pid")
"$tmp/baseline" --addr 127.0.0.1:0 --http-addr 127.0.0.1:0 >"$tmp/baseline.log" 2>&1 &
baseline_pid=$!
server_pids+=("$baseline_pid")

for ((i = 0; ; i++)); do
  kill -0 "$broker_pid" 2>/dev/null || { cat "$tmp/broker.log" >&2; die "the broker exited"; }
  kill -0 "$baseline_pid" 2>/dev/null || { cat "$tmp/baseline.log" >&2; die "the baseline server exited"; }
  if grep -q '"msg":"tokenbroker serving"' "$tmp/broker.log" && grep -q '^listening on ' "$tmp/baseline.log"; then
    break
  fi
  ((i < 300)) || die "servers not up after 30 s (logs in $tmp)"
  sleep 0.1
done
read -r grpc_addr http_addr < <(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    if line.startswith("{") and "tokenbroker serving" in line:
        m = json.loads(line); print(m["grpc"], m["http"].split("://")[-1]); break
' "$tmp/broker.log")
baseline_addr=$(sed -n 's/^listening on //p' "$tmp/baseline.log")
baseline_http=$(sed -n 's/^http listening on //p' "$tmp/baseline.log")
for ((i = 0; ; i++)); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$http_addr/healthz") == 200 ]] && break
  ((i < 100)) || die "GET /healthz is not 200 after 10 s"
  sleep 0.1
done
log "broker: gRPC $grpc_addr, REST $http_addr (pid $broker_pid); baseline: $baseline_addr (pid $baseline_pid)"

# ---------------------------------------------------------------- 3. credentials
# api METHOD PATH WANT_STATUS [curl args...]: the response body goes to
# $tmp/resp; any other status is fatal.
api() {
  local method=$1 path=$2 want=$3 status
  shift 3
  status=$(curl -sS -o "$tmp/resp" -w '%{http_code}' -X "$method" "http://$http_addr$path" \
    -H 'Content-Type: application/json' "$@")
  [[ $status == "$want" ]] || die "$method $path: HTTP $status, want $want: $(cat "$tmp/resp")"
}

admin=$(jget "$tmp/data/admin.json" token)
org_id=$(jget "$tmp/data/admin.json" orgId)
resource="drn:astra:org:$org_id:db:db1:keyspace:ks:table:t"

api POST /v2/clientIdSecrets 200 -H "Authorization: Bearer $admin" \
  -d "{\"roles\":[\"$rw_role\"],\"description\":\"load benchmark\"}"
app_client_id=$(jget "$tmp/resp" clientId)
app_secret=$(jget "$tmp/resp" secret)
app_token=$(jget "$tmp/resp" token)

api POST /v1/auth 201 -d "{\"username\":\"$app_client_id\",\"password\":\"$app_secret\"}"
auth_token=$(jget "$tmp/resp" authToken)

user_login='{"username":"bench-user","password":"bench-password-123"}'
api POST /v2/organizations/users 201 -H "Authorization: Bearer $admin" \
  -d "{\"username\":\"bench-user\",\"password\":\"bench-password-123\",\"roles\":[\"$rw_role\"]}"
api POST /v1/auth 201 -d "$user_login" # the user can log in

# Every Check below must be an "allowed": a denial would measure another path.
check_body="{\"action\":\"$action\",\"resource\":\"$resource\"}"
check_app="{\"credential\":\"$app_token\",\"action\":\"$action\",\"resource\":\"$resource\"}"
check_auth="{\"credential\":\"$auth_token\",\"action\":\"$action\",\"resource\":\"$resource\"}"
# want_allowed [curl args...]: POST /v1/auth/check must answer allowed=true.
want_allowed() {
  api POST /v1/auth/check 200 "$@"
  [[ $(jget "$tmp/resp" allowed) == True ]] || die "Check is not allowed: $(cat "$tmp/resp")"
}
want_allowed -d "$check_app"
want_allowed -d "$check_auth"
want_allowed -H "X-Cassandra-Token: $auth_token" -d "$check_body"
want_allowed -H "Authorization: Bearer $app_token" -d "$check_body"
log "credentials ready: application token $app_client_id, an auth token, user bench-user"

# ---------------------------------------------------------------- 4. runs
clk_tck=$(getconf CLK_TCK)
load_before=$(cut -d' ' -f1-3 /proc/loadavg) # how busy the machine was (other processes share the cores)
results=$tmp/results.tsv
: >"$results"
errors=0



# measure KEY CONCURRENCY SERVER_PID PARSER -- COMMAND...: runs one load
# command (in the background, so Ctrl-C stops it at once), records the
# server's and the load tool's CPU time around it and appends one line to
# $results.
measure() {
  local key=$1 c=$2 pid=$3 parser=$4 before after rc=0 line
  shift 5
  log "run $key c=$c (round $round)"
  before=$(cpu_ticks "$pid")
  # The shell's own `times` (not in a subshell: a fork starts at zero)
  # sums the CPU of its waited-for children: between these two, only the
  # load tool, whose cost per call shares the cores with the server's.
  times >"$tmp/times0"
  "$@" >"$tmp/out" 2>"$tmp/err" &
  load_pid=$!
  wait "$load_pid" || rc=$?
  times >"$tmp/times1"
  load_pid=
  after=$(cpu_ticks "$pid")
  client_s=$(children_cpu_s "$tmp/times0" "$tmp/times1")
  if ((rc != 0)); then
    log "$key c=$c: $1 exited with status $rc: $(head -c 2000 "$tmp/err")"
    errors=$((errors + 1))
    printf '%s\t%s\t%s\t0\t0\t0\t0\t0\t0\t%s exited %s\n' "$key" "$c" "$round" "$(basename "$1")" "$rc" >>"$results"
    return 0
  fi
  line=$(python3 "$tmp/parse.py" "$parser" "$tmp/out")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$key" "$c" "$round" "$((after - before))" "$client_s" "$line" >>"$results"
  if [[ $line == *$'\t'ERR* ]]; then
    log "$key c=$c: calls failed: ${line##*$'\t'}"
    errors=$((errors + 1))
  fi
}

# parse.py ghz|grpcload|hey FILE → calls, req/s, p50 s, p99 s, errors ("-" or "ERR ...")
cat >"$tmp/parse.py" <<'PY'
import json, re, sys
kind, path = sys.argv[1], sys.argv[2]
if kind == "grpcload":
    r = json.load(open(path))
    lat = {50: r["p50"], 99: r["p99"]}
    bad = r["errors"]
    calls, rps = r["count"], r["rps"]
elif kind == "ghz":
    r = json.load(open(path))
    lat = {d["percentage"]: d["latency"] / 1e9 for d in r.get("latencyDistribution") or []}
    bad = {k: v for k, v in (r.get("statusCodeDistribution") or {}).items() if k != "OK"}
    bad.update(r.get("errorDistribution") or {})
    calls, rps = r["count"], r["rps"]
else:  # hey's text summary (it rounds every latency to 0.1 ms)
    text = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    lat = {int(p): float(s) for p, s in re.findall(r"^\s+(\d+)%+ in ([\d.]+) secs", text, re.M)}
    codes = {int(c): int(n) for c, n in re.findall(r"^\s+\[(\d+)\]\s+(\d+) responses", text, re.M)}
    bad = {f"HTTP {c}": n for c, n in codes.items() if c != 200}
    errs = text.split("Error distribution:", 1)
    if len(errs) == 2:
        for n, msg in re.findall(r"^\s+\[(\d+)\]\s+(.*)$", errs[1], re.M):
            bad[msg] = int(n)
    calls = sum(codes.values()) + sum(n for k, n in bad.items() if not k.startswith("HTTP "))
err = "-" if not bad else "ERR " + "; ".join(f"{n}x {k}" for k, n in bad.items())
print(f"{calls}\t{rps:.1f}\t{lat.get(50, 0):.6f}\t{lat.get(99, 0):.6f}\t{err}".replace("\n", " "))
PY

ghz=("$bin/ghz" --insecure -O json --duration-stop ignore)
# grpc_run KEY C SERVER_PID ADDR BOUND KIND [VALUES...]: one gRPC run with
# $grpc_client; connections scale with c. BOUND: "z" ($duration) or a
# call count. KIND and its VALUES: health; check CREDENTIAL; login
# USERNAME PASSWORD.
grpc_run() {
  local key=$1 c=$2 pid=$3 addr=$4 bound=$5 kind=$6 conns=1
  shift 6
  if ((c > 1)); then conns=$connections; fi
  if [[ $grpc_client == grpcload ]]; then
    local -a args=(-addr "$addr" -c "$c" -conns "$conns" -call "$kind")
    if [[ $bound == z ]]; then args+=(-duration "$duration"); else args+=(-n "$bound"); fi
    case $kind in
      check) args+=(-credential "$1" -action "$action" -resource "$resource") ;;
      login) args+=(-username "$1" -password "$2") ;;
    esac
    measure "$key" "$c" "$pid" grpcload -- "$tmp/grpcload" "${args[@]}"
    return
  fi
  local -a args=(-c "$c" --connections "$conns")
  if [[ $bound == z ]]; then args+=(-z "$duration"); else args+=(-n "$bound"); fi
  case $kind in
    health) args+=(--proto "$root/bench/ghz/health.proto" --call grpc.health.v1.Health/Check -d '{}') ;;
    check) args+=(--call tokenbroker.v1.AuthService/Check
      -d "{\"credential\":\"$1\",\"action\":\"$action\",\"resource\":\"$resource\"}") ;;
    login) args+=(--call tokenbroker.v1.AuthService/CreateAuthToken
      -d "{\"username\":\"$1\",\"password\":\"$2\"}") ;;
  esac
  measure "$key" "$c" "$pid" ghz -- "${ghz[@]}" "${args[@]}" "$addr"
}
# rest_run KEY C [hey args...] URL  (against the broker; rest_run_pid for another process)
rest_run() {
  local key=$1 c=$2
  shift 2
  measure "$key" "$c" "$broker_pid" hey -- "$bin/hey" -c "$c" -z "$duration" "$@"
}
rest_run_pid() {
  local key=$1 c=$2 pid=$3
  shift 3
  measure "$key" "$c" "$pid" hey -- "$bin/hey" -c "$c" -z "$duration" "$@"
}

# One function per scenario (argument: the concurrency), so that a round
# can run a group in any order.
grpc_baseline() { grpc_run grpc-baseline "$1" "$baseline_pid" "$baseline_addr" z health; }
grpc_health() { grpc_run grpc-health "$1" "$broker_pid" "$grpc_addr" z health; }
grpc_check_app() { grpc_run grpc-check-app "$1" "$broker_pid" "$grpc_addr" z check "$app_token"; }
grpc_check_auth() { grpc_run grpc-check-auth "$1" "$broker_pid" "$grpc_addr" z check "$auth_token"; }
rest_baseline() { rest_run_pid rest-baseline "$1" "$baseline_pid" -m POST -T application/json -d "$check_body" "http://$baseline_http/v1/auth/check"; }
rest_healthz() { rest_run rest-healthz "$1" "http://$http_addr/healthz"; }
rest_check_xct() {
  rest_run rest-check-xct "$1" -m POST -T application/json -H "X-Cassandra-Token: $auth_token" \
    -d "$check_body" "http://$http_addr/v1/auth/check"
}
rest_check_bearer() {
  rest_run rest-check-bearer "$1" -m POST -T application/json -H "Authorization: Bearer $app_token" \
    -d "$check_body" "http://$http_addr/v1/auth/check"
}
# run_group C BASELINE SCENARIO...: the baseline, then the scenarios rotated
# by the round number.
run_group() {
  local c=$1 base=$2 i n
  shift 2
  n=$#
  local -a s=("$@")
  "$base" "$c"
  for ((i = 0; i < n; i++)); do "${s[(i + round - 1) % n]}" "$c"; done
}
for c in 50 1; do
  for ((round = 1; round <= rounds; round++)); do
    if run_grpc; then run_group "$c" grpc_baseline grpc_health grpc_check_app grpc_check_auth; fi
    if run_rest; then run_group "$c" rest_baseline rest_healthz rest_check_xct rest_check_bearer; fi
  done
done
round=1
# Logins last: each one stores a new auth token, so the Checks above ran on
# the store as it was. Login is throttled on failures only.
if run_grpc; then
  for c in 50 1; do
    grpc_run grpc-login-app "$c" "$broker_pid" "$grpc_addr" z login "$app_client_id" "$app_secret"
    grpc_run grpc-login-user "$c" "$broker_pid" "$grpc_addr" "$login_count" login bench-user bench-password-123
  done
fi

# ---------------------------------------------------------------- 5. report
mkdir -p bench/results
report=bench/results/load-$(date -u +%Y%m%dT%H%M%SZ).txt
{
  echo "tokenbroker load run: $(date -u +%FT%TZ), $(nproc) cores, $(go version | cut -d' ' -f3), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')${TOKENBROKER_BIN:+, broker binary $TOKENBROKER_BIN}${only:+, $only rows only}"
  echo "load average before the runs: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "each run: ${duration}, Check groups in ${rounds} interleaved rounds, medians shown (logins: one run; database-user login: ${login_count} calls); gRPC: $grpc_client, ${connections} connections at c=50, 1 at c=1; REST: hey"
  echo
  python3 - "$results" "$clk_tck" "$login_count" <<'PY'
import sys
path, clk_tck, login_count = sys.argv[1], int(sys.argv[2]), sys.argv[3]
from statistics import median
runs = {}  # (key, c) -> {round: run}
for line in open(path):
    key, c, rnd, ticks, client_s, calls, rps, p50, p99, err = line.rstrip("\n").split("\t")
    runs.setdefault((key, int(c)), {})[int(rnd)] = dict(
        ticks=int(ticks), client_s=float(client_s), calls=int(calls), rps=float(rps),
        p50=float(p50), p99=float(p99), err=err)

def cpu_us(r):  # server CPU per call, microseconds
    return r["ticks"] / clk_tck * 1e6 / r["calls"] if r["calls"] else None

def client_us(r):  # the load tool's CPU per call, microseconds
    return r["client_s"] * 1e6 / r["calls"] if r["calls"] else None

def med(values):
    values = [v for v in values if v is not None]
    return median(values) if values else None

# rows: the median over the rounds of each figure of a scenario.
rows = {}
for k, by_round in runs.items():
    rs = list(by_round.values())
    errs = [r["err"] for r in rs if r["err"] != "-"]
    rows[k] = dict(rps=med([r["rps"] for r in rs]), p50=med([r["p50"] for r in rs]),
                   p99=med([r["p99"] for r in rs]), cpu=med([cpu_us(r) for r in rs]),
                   client=med([client_us(r) for r in rs]),
                   err=errs[0] if errs else "-", rounds=len(rs))

def paired(key, base_key, c, f):
    """Median over the rounds of f(run, baseline of the same round)."""
    a, b = runs.get((key, c), {}), runs.get((base_key, c), {})
    out = []
    for rnd, r in a.items():
        if rnd in b:
            try:
                out.append(f(r, b[rnd]))
            except (TypeError, ZeroDivisionError):
                pass
    return med(out)

scenarios = [
    ("grpc-baseline",     "gRPC baseline: empty server, Health/Check", None),
    ("grpc-health",       "gRPC broker Health/Check (interceptors only)", "grpc-baseline"),
    ("grpc-check-app",    "gRPC Check, application token", "grpc-baseline"),
    ("grpc-check-auth",   "gRPC Check, auth token", "grpc-baseline"),
    ("grpc-login-app",    "gRPC CreateAuthToken, app token clientId/secret", "grpc-baseline"),
    ("grpc-login-user",   f"gRPC CreateAuthToken, database user (n={login_count})", "grpc-baseline"),
    ("rest-baseline",     "REST baseline: bare net/http JSON handler", None),
    ("rest-healthz",      "REST broker GET /healthz", "rest-baseline"),
    ("rest-check-xct",    "REST POST /v1/auth/check, X-Cassandra-Token", "rest-baseline"),
    ("rest-check-bearer", "REST POST /v1/auth/check, Bearer AstraCS", "rest-baseline"),
]
targets = {"grpc-check-app", "grpc-check-auth"}
rest_targets = {"rest-check-xct", "rest-check-bearer"}

def ms(s): return f"{s * 1e3:.3f}"

head = ["scenario", "c", "req/s", "p50 ms", "p99 ms", "CPU us/call", "client us/call",
        "req/s / base", "p99 / base", "p50 - base", "CPU - base", "client - base", "target (info only)"]
out = []
for key, label, base_key in scenarios:
    for c in (50, 1):
        r = rows.get((key, c))
        if r is None:
            continue
        us = lambda v: f"{v:.0f}" if v is not None else "-"
        cells = [label, str(c), f"{r['rps']:,.0f}", ms(r["p50"]), ms(r["p99"]), us(r["cpu"]), us(r["client"]),
                 "", "", "", "", "", ""]
        if base_key and (base_key, c) in rows:
            rps_x = paired(key, base_key, c, lambda r, b: r["rps"] / b["rps"])
            p99_x = paired(key, base_key, c, lambda r, b: r["p99"] / b["p99"])
            d50 = paired(key, base_key, c, lambda r, b: (r["p50"] - b["p50"]) * 1e6)
            dcpu = paired(key, base_key, c, lambda r, b: cpu_us(r) - cpu_us(b))
            dclient = paired(key, base_key, c, lambda r, b: client_us(r) - client_us(b))
            if rps_x is not None: cells[7] = f"{rps_x:.2f}x"
            if p99_x is not None: cells[8] = f"{p99_x:.2f}x"
            if d50 is not None: cells[9] = f"{d50:+.0f} us"
            if dcpu is not None: cells[10] = f"{dcpu:+.0f} us"
            if dclient is not None: cells[11] = f"{dclient:+.0f} us"
            yn = lambda ok: "met" if ok else "not met"
            if key in targets:
                cells[12] = (f">=0.90x req/s ({yn(rps_x is not None and rps_x >= 0.90)}), CPU <=+10 us ({yn(dcpu is not None and dcpu <= 10)})" if c == 50
                             else f"p50 <=+30 us ({yn(d50 is not None and d50 <= 30)})")
            if key in rest_targets:
                cells[12] = f">=0.75x req/s ({yn(rps_x is not None and rps_x >= 0.75)})"
        if r["err"] != "-":
            cells[12] = r["err"][:120]
        out.append(cells)

w = [max(len(x[i]) for x in out + [head]) for i in range(len(head))]
right = set(range(1, 12))
fmt = lambda cells: "  ".join(c.rjust(w[i]) if i in right else c.ljust(w[i]) for i, c in enumerate(cells)).rstrip()
print(fmt(head))
print("  ".join("-" * x for x in w))
prev = None
for cells in out:
    if prev is not None and cells[0] != prev and cells[0].startswith("REST baseline"):
        print()
    print(fmt(cells))
    prev = cells[0]
PY
  echo
  echo "Every figure is the median over the rounds; every ratio and difference is the median of the"
  echo "per-round comparisons against the baseline of its group at the same concurrency in the same"
  echo "round (gRPC: the empty grpc-go server; REST: a bare net/http JSON handler). CPU us/call = the"
  echo "server process's utime+stime over the run / calls; client us/call = the load tool's ($grpc_client's or"
  echo "hey's) utime+stime / calls, its start-up included: both share the same cores, so req/s is partly the client's limit, and"
  echo "a scenario whose calls cost the client more reaches fewer req/s at the same server cost. Targets are informational, never pass/fail: gRPC Check >= 0.90x"
  echo "req/s and CPU <= +10 us at c=50, p50 <= +30 us at c=1; REST Check >= 0.75x req/s."
  echo "hey rounds latencies to 0.1 ms, so REST p50/p99 have 100 us resolution."
} | tee "$report"
log "written to $report ($(($(date +%s) - started)) s in all)"

if ((errors > 0)); then
  die "$errors run(s) had failing calls (see the table)"
fi
