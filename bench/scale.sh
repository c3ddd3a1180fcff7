#!/usr/bin/env bash
# Measures how the broker behaves as its store grows: the same measurements
# on a store of 1,000 application tokens (the baseline) and on one of
# SCALE_TOKENS (default 1,000,000), in the same run, on the same machine.
# The big store also holds SCALE_TOKENS/10 authorization tokens and
# SCALE_TOKENS/100 Pulsar tokens (100k and 10k at the default); the small one
# the same proportions. Every token is created through the public gRPC API
# (ghz, 64 concurrent callers over 4 connections), so the fill is itself the
# create-rate measurement.
#
# Per store: create rate over the fill and over more creates at the
# end (END_CREATES, default 2,000, which stay in the store); Check (application token) req/s and p99 at c=50; server RSS and
# RssAnon; data file size, and the bytes one application token takes with
# its index entries and audit event (bench/internal/filestats, which also
# logs every bucket's share); start-up time (process start to the time of
# the "tokenbroker serving" log line, then GET /healthz 200 is checked); the server's idle CPU over IDLE_SECONDS (default 65: one GC tick),
# from 65 s after its start (after the first GC tick);
# the first page of each list route, and each whole list: application tokens,
# users, Pulsar tokens (unpaged, streamed) and databases (walked with
# pageSize=1000). Each store also holds LIST_ITEMS database users, Pulsar
# tokens of one tenant, and databases (default: a quarter of its tokens, at
# most 5,000; users cost an argon2id hash each).
# Then restarts: after a clean stop, with the file dropped from the page
# cache (where this process may write /proc/sys/vm/drop_caches), and after
# a SIGKILL that follows a write (with the page cache kept, then dropped).
# Nothing passes or fails on time. The table is also written to
# bench/results/scale-<UTC timestamp>.txt (git-ignored).
#
#   bash bench/scale.sh                       # 1M tokens: long (the fill dominates)
#   SCALE_TOKENS=200000 bash bench/scale.sh   # fewer
#   IDLE_SECONDS=20 CHECK_DURATION=5s bash bench/scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh # cpu_ticks, jget, ghzsum, wait_serving, serving_addrs, stop_broker
root=$PWD
big=${SCALE_TOKENS:-1000000}
small=1000
idle=${IDLE_SECONDS:-65}
check_duration=${CHECK_DURATION:-10s}
end_creates=${END_CREATES:-2000} # creates timed after the fill (they stay in the store)
list_items() { if [[ -n ${LIST_ITEMS:-} ]]; then echo "$LIST_ITEMS"; else local q=$(($1 / 4)); echo $((q < 5000 ? q : 5000)); fi; }
rw_role=b4ed0e9e-67e8-47b6-8b58-c6629be961a9 # "R/W Svc Acct" default role
bin=$root/tools/bin
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tokenbroker-scale.XXXXXX")
pid=

log() { echo "scale.sh: $*" >&2; }
die() { log "$*"; exit 1; }
trap 'stop_broker; rm -rf "$tmp"' EXIT

log "building tokenbroker; installing ghz (tools/load/go.mod)"
go build -o "$tmp/tokenbroker" ./cmd/tokenbroker
go build -o "$tmp/filestats" ./bench/internal/filestats
mkdir -p "$bin"
(cd tools/load && GOBIN="$bin" go install tool)
clk_tck=$(getconf CLK_TCK)

# start_broker DIR: starts it (setting pid, grpc and http), waits for
# GET /healthz 200 and sets started_in to the seconds that took. It must
# not run in a subshell: the caller needs pid to stop the broker.
start_broker() {
  local dir=$1 t0
  t0=$(date +%s.%N)
  "$tmp/tokenbroker" serve --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --data "$dir/tb.db" \
    --bootstrap-file "$dir/admin.json" --pulsar-token-limit 100000000 --ui=false >"$dir/broker.log" 2>&1 &
  pid=$!
  wait_serving "$pid" "$dir/broker.log" 60 || die "no broker on $dir"
  read -r grpc http started_in < <(serving_addrs "$dir/broker.log" "$t0")
  until [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$http/healthz") == 200 ]]; do sleep 0.02; done
}
# drop_page_cache: empties the kernel's page cache so that the next start
# reads the file from disk; prints "yes", or "no" where that needs a
# privilege this process lacks.
drop_page_cache() { if sync && { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then echo yes; else echo no; fi; }

results=$tmp/results.tsv
: >"$results"
row() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$results"; } # METRIC SIZE VALUE

# measure_store N
measure_store() {
  local n=$1 dir=$tmp/store-$1 admin rps p99 errs t
  mkdir -p "$dir"
  : >"$dir/broker.log"
  start_broker "$dir"
  admin=$(jget "$dir/admin.json" token)
  local md="{\"authorization\":\"Bearer $admin\"}"
  local g=("$bin/ghz" --insecure -c 64 --connections 4 -O json -m "$md")
  log "store $n: filling $n application tokens"
  "${g[@]}" --call tokenbroker.v1.TokenService/CreateToken -d "{\"roles\":[\"$rw_role\"],\"description\":\"scale\"}" \
    -n "$n" "$grpc" >"$dir/fill.json" || true
  read -r rps p99 errs _ < <(ghzsum "$dir/fill.json")
  row "create rate over the fill (tokens/s)" "$n" "$rps"
  ((errs == 0)) || log "store $n: $errs failed creates"
  # An application token for the auth-token logins and the Checks.
  curl -sS -o "$dir/app.json" -X POST "http://$http/v2/clientIdSecrets" -H "Authorization: Bearer $admin" \
    -H 'Content-Type: application/json' -d "{\"roles\":[\"$rw_role\"]}"
  local cid secret app
  cid=$(jget "$dir/app.json" clientId); secret=$(jget "$dir/app.json" secret); app=$(jget "$dir/app.json" token)
  local items pulsar
  items=$(list_items "$n")
  pulsar=$((n / 100 > items ? n / 100 : items))
  log "store $n: $((n / 10)) auth tokens, $pulsar Pulsar tokens, $items users, $items databases"
  "${g[@]}" --call tokenbroker.v1.AuthService/CreateAuthToken -d "{\"username\":\"$cid\",\"password\":\"$secret\"}" \
    -n $((n / 10)) "$grpc" >"$dir/auth.json" || true
  curl -sS -o /dev/null -X POST "http://$http/v2/streaming/tenants" -H "Authorization: Bearer $admin" \
    -H 'Content-Type: application/json' -d '{"tenantName":"scale","clusterName":"c1","cloudProvider":"aws","cloudRegion":"useast1"}'
  "${g[@]}" --call tokenbroker.v1.PulsarTokenService/CreatePulsarToken -d '{"tenant":"scale"}' \
    -n "$pulsar" "$grpc" >"$dir/pulsar.json" || true
  "${g[@]}" --call tokenbroker.v1.AuthService/CreateUser \
    -d "{\"username\":\"user-{{.RequestNumber}}\",\"password\":\"scale-password-123\",\"roles\":[\"$rw_role\"]}" \
    -n "$items" "$grpc" >"$dir/users.json" || true
  read -r rps p99 errs _ < <(ghzsum "$dir/users.json")
  ((errs == 0)) || log "store $n: $errs failed user creates"
  "${g[@]}" --call tokenbroker.v1.DatabaseService/CreateDatabase -d '{"name":"db-{{.RequestNumber}}"}' \
    -n "$items" "$grpc" >"$dir/databases.json" || true
  read -r rps p99 errs _ < <(ghzsum "$dir/databases.json")
  ((errs == 0)) || log "store $n: $errs failed database creates"
  "${g[@]}" --call tokenbroker.v1.TokenService/CreateToken -d "{\"roles\":[\"$rw_role\"],\"description\":\"scale\"}" \
    -n "$end_creates" "$grpc" >"$dir/create-end.json" || true
  read -r rps p99 errs _ < <(ghzsum "$dir/create-end.json")
  row "create rate, $end_creates more after the fill (tokens/s)" "$n" "$rps"

  local org resource
  org=$(jget "$dir/admin.json" orgId)
  resource="drn:astra:org:$org:db:db1:keyspace:ks:table:t"
  "$bin/ghz" --insecure -c 50 --connections 4 -O json -z "$check_duration" --call tokenbroker.v1.AuthService/Check \
    -d "{\"credential\":\"$app\",\"action\":\"db-table-select\",\"resource\":\"$resource\"}" "$grpc" >"$dir/check.json" || true
  read -r rps p99 errs _ < <(ghzsum "$dir/check.json")
  row "Check req/s (app token, c=50)" "$n" "$rps"
  row "Check p99 (ms)" "$n" "$(python3 -c "print(f'{$p99*1e3:.2f}')")"

  # Each figure is the median of 5 requests (the machine may be shared).
  local r
  for route in "/v2/clientIdSecrets?pageSize=100" "/v2/organizations/users?pageSize=100" \
    "/v2/streaming/tenants/scale/tokens?pageSize=100" "/v2/databases?pageSize=100" "/v2/databases" \
    "/v2/audit/events?pageSize=100"; do
    t=$(for r in 1 2 3 4 5; do curl -sS -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $admin" "http://$http$route"; done |
      sort -n | sed -n 3p)
    row "first page GET $route (ms)" "$n" "$(python3 -c "print(f'{$t*1e3:.1f}')")"
  done
  for route in /v2/clientIdSecrets /v2/organizations/users /v2/streaming/tenants/scale/tokens; do
    read -r t size code < <(curl -sS -o /dev/null -w '%{time_total} %{size_download} %{http_code}\n' \
      -H "Authorization: Bearer $admin" "http://$http$route")
    row "whole list GET $route (s)" "$n" "$t (HTTP $code)"
    row "whole list GET $route (MB)" "$n" "$(python3 -c "print(f'{$size/1e6:.2f}')")"
  done
  # Databases have Astra's own bounded page: the whole list is a page walk.
  row "whole list /v2/databases walked with pageSize=1000 (s)" "$n" "$(python3 - "http://$http" "$admin" <<'PY'
import json, sys, time, urllib.parse, urllib.request
base, tok = sys.argv[1], sys.argv[2]
t0, token, count = time.monotonic(), "", 0
while True:
    q = "pageSize=1000" + ("&pageToken=" + urllib.parse.quote(token) if token else "")
    req = urllib.request.Request(f"{base}/v2/databases?{q}", headers={"Authorization": f"Bearer {tok}"})
    body = json.load(urllib.request.urlopen(req))
    count += len(body["databases"])
    token = body["nextPageToken"]
    if not token:
        break
print(f"{time.monotonic() - t0:.3f} ({count} databases)")
PY
)"

  local rss anon
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  anon=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status")
  row "RSS (MB)" "$n" "$((rss / 1024))"
  row "RssAnon (MB)" "$n" "$((anon / 1024))"

  stop_broker
  row "data file (MB)" "$n" "$(($(stat -c %s "$dir/tb.db") / 1000000))"
  row "file bytes per stored token (all kinds, audit included)" "$n" "$(($(stat -c %s "$dir/tb.db") / (n + n / 10 + pulsar + 3 * items + end_creates + 1)))"
  row "file bytes per application token with its index entries and audit event" "$n" "$("$tmp/filestats" -per-token "$dir/tb.db")"
  log "where the $n-token store's bytes go:"; "$tmp/filestats" "$dir/tb.db" | sed 's/^/  /' >&2
  start_broker "$dir"
  row "start-up to /healthz 200 (s)" "$n" "$started_in"
  local before after
  # The first garbage collection after a start (at one minute) also
  # sweeps for orphaned auth tokens, once per start: measure after it.
  sleep 65
  before=$(cpu_ticks "$pid")
  sleep "$idle"
  after=$(cpu_ticks "$pid")
  row "idle CPU over ${idle} s after the first GC tick (ticks of 1/${clk_tck} s)" "$n" "$((after - before))"
  stop_broker
  if [[ $(drop_page_cache) == yes ]]; then
    start_broker "$dir"
    row "start-up, file not in the page cache (s)" "$n" "$started_in"
  else
    start_broker "$dir"
    log "cannot drop the page cache here: no start-up from disk measured"
  fi
  # A crash after a write: the next start rebuilds the free-page list.
  curl -sS -o /dev/null -X POST "http://$http/v2/clientIdSecrets" -H "Authorization: Bearer $admin" \
    -H 'Content-Type: application/json' -d "{\"roles\":[\"$rw_role\"]}"
  kill -KILL "$pid"; wait "$pid" 2>/dev/null || true; pid=
  start_broker "$dir"
  row "start-up after SIGKILL (s)" "$n" "$started_in"
  curl -sS -o /dev/null -X POST "http://$http/v2/clientIdSecrets" -H "Authorization: Bearer $admin" \
    -H 'Content-Type: application/json' -d "{\"roles\":[\"$rw_role\"]}"
  kill -KILL "$pid"; wait "$pid" 2>/dev/null || true; pid=
  if [[ $(drop_page_cache) == yes ]]; then
    start_broker "$dir"
    row "start-up after SIGKILL, file not in the page cache (s)" "$n" "$started_in"
    stop_broker
  fi
}

measure_store "$small"
measure_store "$big"

mkdir -p bench/results
report=bench/results/scale-$(date -u +%Y%m%dT%H%M%SZ).txt
{
  echo "tokenbroker scale run: $(date -u +%FT%TZ), $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "stores: $small and $big application tokens (plus /10 auth tokens; $(list_items "$small") and $(list_items "$big") users, databases, Pulsar tokens (at least /100)); ghz c=64 for creates"
  python3 - "$results" "$small" "$big" <<'PY'
import sys
path, small, big = sys.argv[1], sys.argv[2], sys.argv[3]
rows, order = {}, []
for line in open(path):
    m, n, v = line.rstrip("\n").split("\t")
    if m not in rows:
        order.append(m); rows[m] = {}
    rows[m][n] = v
head = ["measure", f"{int(small):,} tokens (baseline)", f"{int(big):,} tokens", "big / baseline"]
out = []
for m in order:
    a, b = rows[m].get(small, "-"), rows[m].get(big, "-")
    try:
        ratio = f"{float(b.split()[0]) / float(a.split()[0]):.2f}x"
    except (ValueError, ZeroDivisionError, IndexError):
        ratio = ""
    out.append([m, a, b, ratio])
w = [max(len(r[i]) for r in out + [head]) for i in range(4)]
for r in [head, ["-" * x for x in w]] + out:
    print("  ".join(c.ljust(w[0]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)))
PY
} | tee "$report"
log "written to $report"
