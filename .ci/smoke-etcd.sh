#!/usr/bin/env bash
# Smoke test of the etcd backend as an operator would run it: a real etcd
# server process (the version pinned in tools/etcd), the real broker binary
# started as docs/storage.md says (--store etcd --etcd-endpoints …
# --key-file … --bootstrap-file …) on a fresh key prefix, the README's curl
# and grpcurl examples run unchanged (only the two listen addresses are
# rewritten, to free ports: .ci/readme-examples.sh), then a restart of the
# broker that must reuse the data: no second bootstrap, the bootstrap token
# and the tokens made by the examples still there. Needs curl and jq.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=$(mktemp -d)
port() { echo $((20000 + RANDOM % 20000)); }
etcd_client=127.0.0.1:$(port)
etcd_peer=127.0.0.1:$(port)
grpc=127.0.0.1:$(port)
http=127.0.0.1:$(port)
prefix=/smoke-$$-$RANDOM/

go build -o "$dir/tokenbroker" ./cmd/tokenbroker
(cd tools/etcd && go build -o "$dir/etcd" .)
(cd tools && GOBIN="$PWD/bin" go install github.com/fullstorydev/grpcurl/cmd/grpcurl)
export PATH="$root/tools/bin:$PATH" # grpcurl, as the README calls it

etcd_pid= pid=
stop() {
  if [[ -n $pid ]]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  pid=
}
trap 'stop; [[ -n $etcd_pid ]] && { kill -TERM "$etcd_pid" 2>/dev/null || true; wait "$etcd_pid" 2>/dev/null || true; }; rm -rf "$dir"' EXIT
fail() { echo "smoke-etcd: $*"; echo "--- broker log"; cat "$dir/log" 2>/dev/null; echo "--- etcd log (tail)"; tail -20 "$dir/etcd.log"; exit 1; }

"$dir/etcd" --data-dir "$dir/etcd-data" --name smoke \
  --listen-client-urls "http://$etcd_client" --advertise-client-urls "http://$etcd_client" \
  --listen-peer-urls "http://$etcd_peer" --initial-advertise-peer-urls "http://$etcd_peer" \
  --initial-cluster "smoke=http://$etcd_peer" \
  --auto-compaction-mode=periodic --auto-compaction-retention=1h >"$dir/etcd.log" 2>&1 &
etcd_pid=$!
for _ in $(seq 100); do curl -sf "http://$etcd_client/health" | jq -e '.health == "true"' >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "http://$etcd_client/health" >/dev/null || fail "etcd did not start"

# The broker works in $dir/work, so the README's data/admin.json is where
# the examples look for it.
mkdir -p "$dir/work"
start() {
  (cd "$dir/work" && exec "$dir/tokenbroker" serve --store etcd --etcd-endpoints "$etcd_client" --etcd-prefix "$prefix" \
    --key-file data/tokenbroker.key --bootstrap-file data/admin.json --grpc-addr "$grpc" --http-addr "$http") >"$dir/log" 2>&1 &
  pid=$!
  for _ in $(seq 150); do grep -q '"msg":"tokenbroker serving"' "$dir/log" 2>/dev/null && return; sleep 0.1; done
  fail "broker did not start"
}

start
boot=$dir/work/data/admin.json
[[ -f $boot ]] || fail "no bootstrap file"
grep -q '"store":"etcd"' "$dir/log" && grep -q "\"etcd_prefix\":\"$prefix\"" "$dir/log" \
  && grep -q '"key_file":"data/tokenbroker.key"' "$dir/log" || fail "start log does not name the etcd store, prefix and key file"
admin=$(jq -r .token "$boot")
boot_sum=$(sha256sum <"$boot")
grep -q 'first start, created the organization' "$dir/log" || fail "first start did not announce the bootstrap"

# The README's examples, unchanged but for the addresses.
HTTP=$http GRPC=$grpc bash .ci/readme-examples.sh >"$dir/examples.sh"
(cd "$dir/work" && bash -x "$dir/examples.sh") >"$dir/examples.out" 2>&1 || fail "README examples failed: $(tail -20 "$dir/examples.out")"
# Every example answered as the README says.
for want in \
  '"description":"service A"' \
  '"previousClientId":' \
  '"maxTokenLifetime":"1y"' \
  '"Name":"keyspaceRole"' \
  '"allowed":true' \
  '"Username":"app1"' \
  '"ID":340018' \
  '"tenantName":"acme"' \
  '"rolename":"app1"' \
  '"tokenPublicKey":"data:;base64,' \
  '"jwks_uri":' \
  '"token":"AstraCS:' \
  '"month":' \
  '"action":"DatabaseService.CreateDatabase"' \
  'tokenbroker.v1.TokenService' \
  '"status": "SERVING"'; do
  grep -qF -- "$want" "$dir/examples.out" || fail "README examples: no $want in the transcript: $(grep -v '^+' "$dir/examples.out" | tail -20)"
done
before=$(curl -sf "http://$http/v2/clientIdSecrets" -H "Authorization: Bearer $admin" | jq -c '[.clients[].clientId] | sort')
stop

# Restart on the same prefix and key file: the data is reused.
start
grep -q 'first start, created the organization' "$dir/log" && fail "restart bootstrapped again"
grep -q '"msg":"created key file"' "$dir/log" && fail "restart created another key file"
[[ $(sha256sum <"$boot") == "$boot_sum" ]] || fail "restart rewrote the bootstrap file"
code=$(curl -s -o "$dir/body" -w '%{http_code}' "http://$http/v2/currentOrg" -H "Authorization: Bearer $admin")
[[ $code == 200 ]] && jq -e --arg o "$(jq -r .orgId "$boot")" '.id == $o' "$dir/body" >/dev/null \
  || fail "bootstrap token after restart: HTTP $code $(cat "$dir/body")"
after=$(curl -sf "http://$http/v2/clientIdSecrets" -H "Authorization: Bearer $admin" | jq -c '[.clients[].clientId] | sort')
[[ $before == "$after" ]] || fail "tokens changed across the restart: $before then $after"
curl -sf "http://$http/v2/organizations/roles" -H "Authorization: Bearer $admin" | jq -e 'any(.[]; .Name == "keyspaceRole")' >/dev/null \
  || fail "custom role lost across the restart"
kill -TERM $pid; wait $pid || fail "broker did not exit cleanly on SIGTERM"; pid=
echo "smoke-etcd: ok (real etcd, fresh prefix $prefix, bootstrap, README curl and grpcurl examples, restart reused the data)"
