#!/usr/bin/env bash
# CPU profiles of the broker under Check load, next to the empty gRPC
# handler, and where each microsecond of a call goes. For each scenario
# (the empty grpc-go server's Health/Check, the broker's Health/Check, Check
# with an application token, Check with an auth token) at c=50 and at c=1,
# it runs ghz against a real process and takes a CPU profile of that
# process while the load runs (net/http/pprof: the broker's --pprof on its
# --metrics-addr, the baseline's --pprof-addr). It then prints, per call,
# the server's CPU and the cumulative microseconds of the frames that make
# up a call (request decode, interceptors, the broker's check, the store or
# cache read, response encode, GC, stack growth, syscalls), each next to
# the same frame under the empty handler in the same run.
#
# Per-call figures are a profile's samples of a frame divided by the calls
# made during the profile (req/s x seconds): they are shares of one run on
# a noisy 2-core machine (ghz shares the cores), not absolute truths; read
# them next to their baseline column. Nothing passes or fails on time.
#
#   bash bench/profile.sh                 # 10 s profiles
#   PROFILE_SECONDS=5 bash bench/profile.sh
#
# The profiles are kept in bench/results/profile-<UTC timestamp>/ (git-ignored):
#   go tool pprof -http=: bench/results/profile-.../tokenbroker bench/results/profile-.../check-app-c50.prof
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh # jget
root=$PWD
seconds=${PROFILE_SECONDS:-10}
connections=${CONNECTIONS:-4}
rw_role=b4ed0e9e-67e8-47b6-8b58-c6629be961a9 # "R/W Svc Acct" default role
action=db-table-select
bin=$root/tools/bin
out=$root/bench/results/profile-$(date -u +%Y%m%dT%H%M%SZ)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tokenbroker-profile.XXXXXX")
pids=()

cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
log() { echo "profile.sh: $*" >&2; }
die() { log "$*"; exit 1; }
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkdir -p "$out" "$bin"
log "building into $out"
go build -o "$out/tokenbroker" ./cmd/tokenbroker
go build -o "$out/baseline" ./bench/baseline
(cd tools/load && GOBIN="$bin" go install tool)

grpc=$(freeport) http=$(freeport) metrics=$(freeport) base=$(freeport) basepprof=$(freeport)
"$out/tokenbroker" serve --grpc-addr "127.0.0.1:$grpc" --http-addr "127.0.0.1:$http" \
  --metrics-addr "127.0.0.1:$metrics" --pprof --data "$tmp/data/tokenbroker.db" \
  --bootstrap-file "$tmp/data/admin.json" >"$tmp/broker.log" 2>&1 &
pids+=($!)
"$out/baseline" --addr "127.0.0.1:$base" --pprof-addr "127.0.0.1:$basepprof" >"$tmp/baseline.log" 2>&1 &
pids+=($!)
for ((i = 0; ; i++)); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http/healthz") == 200 ]] &&
    grep -q '^listening on ' "$tmp/baseline.log" && break
  ((i < 300)) || die "servers not up after 30 s (logs in $tmp)"
  sleep 0.1
done

admin=$(jget "$tmp/data/admin.json" token)
org_id=$(jget "$tmp/data/admin.json" orgId)
resource="drn:astra:org:$org_id:db:db1:keyspace:ks:table:t"
curl -sf -o "$tmp/app.json" -X POST "http://127.0.0.1:$http/v2/clientIdSecrets" -H "Authorization: Bearer $admin" \
  -H 'Content-Type: application/json' -d "{\"roles\":[\"$rw_role\"],\"description\":\"profile\"}"
curl -sf -o "$tmp/auth.json" -X POST "http://127.0.0.1:$http/v1/auth" -H 'Content-Type: application/json' \
  -d "{\"username\":\"$(jget "$tmp/app.json" clientId)\",\"password\":\"$(jget "$tmp/app.json" secret)\"}"
echo "{\"credential\":\"$(jget "$tmp/app.json" token)\",\"action\":\"$action\",\"resource\":\"$resource\"}" >"$tmp/check-app.json"
echo "{\"credential\":\"$(jget "$tmp/auth.json" authToken)\",\"action\":\"$action\",\"resource\":\"$resource\"}" >"$tmp/check-auth.json"

# run NAME C ADDR PPROF_URL ghz-args...: load for seconds+4 s, profile the
# middle seconds; writes NAME-cC.prof and NAME-cC.json (ghz's report).
run() {
  local name=$1 c=$2 addr=$3 pprof=$4 conns=1
  shift 4
  ((c > 1)) && conns=$connections
  log "$name c=$c"
  "$bin/ghz" --insecure -O json -c "$c" --connections "$conns" -z "$((seconds + 4))s" "$@" "$addr" \
    >"$out/$name-c$c.json" &
  local load=$!
  sleep 2
  curl -sf -o "$out/$name-c$c.prof" "$pprof/debug/pprof/profile?seconds=$seconds"
  wait "$load"
}
health=(--proto "$root/bench/ghz/health.proto" --call grpc.health.v1.Health/Check -d '{}')
for c in 50 1; do
  run empty "$c" "127.0.0.1:$base" "http://127.0.0.1:$basepprof" "${health[@]}"
  run health "$c" "127.0.0.1:$grpc" "http://127.0.0.1:$metrics" "${health[@]}"
  run check-app "$c" "127.0.0.1:$grpc" "http://127.0.0.1:$metrics" --call tokenbroker.v1.AuthService/Check -D "$tmp/check-app.json"
  run check-auth "$c" "127.0.0.1:$grpc" "http://127.0.0.1:$metrics" --call tokenbroker.v1.AuthService/Check -D "$tmp/check-auth.json"
done

python3 - "$out" "$seconds" <<'PY' | tee "$out/table.txt"
import json, re, subprocess, sys
out, seconds = sys.argv[1], float(sys.argv[2])
unit = {"": 0.0, "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "mins": 60.0, "hrs": 3600.0}
line_re = re.compile(r"^\s*([\d.]+)(\w*)\s+[\d.]+%\s+[\d.]+%\s+([\d.]+)(\w*)\s+[\d.]+%\s+(.+)$")

def profile(name, c, binary):
    calls = json.load(open(f"{out}/{name}-c{c}.json"))["rps"] * seconds
    text = subprocess.run(["go", "tool", "pprof", "-top", "-cum", "-nodecount=100000", binary,
                           f"{out}/{name}-c{c}.prof"], capture_output=True, text=True, check=True).stdout
    total = float(re.search(r"Total samples = ([\d.]+)(\w+)", text).group(1)) * unit[re.search(r"Total samples = [\d.]+(\w+)", text).group(1)]
    frames = {}
    for l in text.splitlines():
        m = line_re.match(l)
        if m:
            frames[m.group(5)] = float(m.group(3)) * unit[m.group(4)]
    return calls, total, frames

# What a call is made of: a label and a regular expression matched against
# function names (the cumulative time of the first match, in microseconds).
rows = [
    ("server CPU per call (all samples)", None),
    ("gRPC stream handling (all work of a call)", r"grpc\.\(\*Server\)\.handleStream$"),
    ("  request: read + decode", r"grpc\.\(\*serverStream\)\.RecvMsg$"),
    ("  interceptors and handler", r"tokenbroker/server/metrics\.\(\*rpcMetrics\)\.unary$|health\.\(\*Server\)\.Check$"),
    ("    guard (request ID, rule, audit)", r"tokenbroker/server\.\(\*guard\)\.unary$"),
    ("    broker.Check", r"broker\.\(\*Broker\)\.Check$"),
    ("      authenticate", r"broker\.\(\*Broker\)\.Authenticate$"),
    ("        credential cache / store read", r"view\.\(\*View\)\.(TokenCredential|ResolvedAuthToken)$"),
    ("        MAC verification", r"credential\.\(\*MAC\)\.(Verify|Sum)$"),
    ("  response: encode + send", r"grpc\.\(\*serverStream\)\.SendMsg$"),
    ("transport writer (loopy)", r"transport\.\(\*loopyWriter\)\.run$"),
    ("GC background marking", r"runtime\.gcBgMarkWorker$"),
    ("allocation (mallocgc)", r"runtime\.mallocgc$"),
    ("stack growth (newstack)", r"runtime\.newstack$"),
    ("syscalls", r"internal/runtime/syscall/linux\.Syscall6$"),
]
for c in (50, 1):
    base = profile("empty", c, f"{out}/baseline")
    cols = [("empty", base)] + [(n, profile(n, c, f"{out}/tokenbroker")) for n in ("health", "check-app", "check-auth")]
    print(f"\nc={c}: microseconds per call (cumulative), from {seconds:.0f} s CPU profiles; req/s in the header")
    head = ["frame"] + [f"{n} ({p[0] / seconds:,.0f}/s)" for n, p in cols]
    table = []
    for label, rx in rows:
        cells = [label]
        for _, (calls, total, frames) in cols:
            if rx is None:
                v = total
            else:
                v = next((t for f, t in frames.items() if re.search(rx, f)), 0.0)
            cells.append(f"{v / calls * 1e6:.1f}")
        table.append(cells)
    w = [max(len(r[i]) for r in table + [head]) for i in range(len(head))]
    for r in [head] + table:
        print("  ".join(x.ljust(w[0]) if i == 0 else x.rjust(w[i]) for i, x in enumerate(r)))
print(f"\nprofiles: {out}/*.prof (binaries beside them)")
PY
