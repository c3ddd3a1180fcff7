#!/usr/bin/env bash
# Smoke test as a new user would do it: start the broker with the README
# command (the bootstrap credential lands beside the data file), list
# services with grpcurl, run the README curl flow (create → list → delete →
# the deleted token gets 401) with jq, watch /metrics move, then restart the
# broker with TLS and with mTLS and call it with curl --cacert and grpcurl
# -cacert (and, under mTLS, see grpcurl refused without a client
# certificate). Needs curl, jq and openssl (.ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
port() { echo $((20000 + RANDOM % 20000)); }
grpc=127.0.0.1:$(port)
http=127.0.0.1:$(port)
go build -o "$dir/tokenbroker" ./cmd/tokenbroker
(cd tools && GOBIN="$PWD/bin" go install github.com/fullstorydev/grpcurl/cmd/grpcurl)
grpcurl=$PWD/tools/bin/grpcurl

pid=
stop() {
  if [[ -n $pid ]]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  pid=
}
trap 'stop; rm -rf "$dir"' EXIT
fail() { echo "smoke: $*"; echo "--- broker log"; cat "$dir/log"; exit 1; }
start() { # extra serve flags...
  "$dir/tokenbroker" serve --data "$dir/d/tb.db" --grpc-addr "$grpc" --http-addr "$http" "$@" >"$dir/log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q '"msg":"tokenbroker serving"' "$dir/log" 2>/dev/null && return; sleep 0.1; done
  fail "broker did not start"
}

start
services=$("$grpcurl" -plaintext "$grpc" list)
grep -q '^tokenbroker.v1.TokenService$' <<<"$services" || fail "TokenService not listed: $services"
grep -q '^grpc.health.v1.Health$' <<<"$services" || fail "Health not listed: $services"

boot=$dir/d/admin.json
[[ -f $boot ]] || fail "no bootstrap file beside the data file"
grep -q "\"bootstrap_file\":\"$boot\"" "$dir/log" || fail "start log does not name the bootstrap file"
[[ $(stat -c %a "$boot") == 600 ]] || fail "bootstrap file is not mode 0600"
admin=$(jq -r .token "$boot")
created=$(curl -sf -X POST "http://$http/v2/clientIdSecrets" -H "Authorization: Bearer $admin" \
  -H 'Content-Type: application/json' -d '{"roles":["b4ed0e9e-67e8-47b6-8b58-c6629be961a9"]}') || fail "create failed"
cid=$(jq -r .clientId <<<"$created"); tok=$(jq -r .token <<<"$created")
curl -sf "http://$http/v2/clientIdSecrets" -H "Authorization: Bearer $admin" | jq -e --arg c "$cid" '.clients | any(.clientId == $c)' >/dev/null \
  || fail "list lacks $cid"
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://$http/v2/clientIdSecrets/$cid" -H "Authorization: Bearer $admin")
[[ $code == 200 ]] || fail "delete: HTTP $code"
code=$(curl -s -o "$dir/body" -w '%{http_code}' "http://$http/v2/currentOrg" -H "Authorization: Bearer $tok")
[[ $code == 401 ]] || fail "deleted token: HTTP $code, want 401"
jq -e '.errors[0].ID == 340018' "$dir/body" >/dev/null || fail "deleted token: body $(cat "$dir/body")"
# The last Organization Administrator token cannot be deleted.
admin_id=$(jq -r .clientId "$boot")
code=$(curl -s -o "$dir/body" -w '%{http_code}' -X DELETE "http://$http/v2/clientIdSecrets/$admin_id" -H "Authorization: Bearer $admin")
[[ $code == 409 ]] && grep -q 'tokenbroker admin recover' "$dir/body" || fail "deleting the last admin token: HTTP $code $(cat "$dir/body")"
# Invalid UTF-8 in a path parameter: 400 in Astra's body, not a 500.
code=$(curl -s -o "$dir/body" -w '%{http_code}' "http://$http/v2/organizations/roles/%FF")
[[ $code == 400 ]] || fail "roles/%FF: HTTP $code, want 400"
grep -q '"message":"roleId: must be valid UTF-8"' "$dir/body" || fail "roles/%FF: body $(cat "$dir/body")"
# grpcurl with a credential, as an operator would debug.
"$grpcurl" -plaintext -H "authorization: Bearer $admin" "$grpc" tokenbroker.v1.TokenService/GetCurrentOrg | grep -q '"id"' \
  || fail "grpcurl GetCurrentOrg failed"
# Metrics moved with that traffic.
metrics=$(curl -sf "http://$http/metrics") || fail "GET /metrics failed"
grep -q '^grpc_server_handled_total{grpc_code="OK",grpc_method="CreateToken",grpc_service="tokenbroker.v1.TokenService",grpc_type="unary"} [1-9]' <<<"$metrics" \
  || fail "no CreateToken in grpc_server_handled_total"
grep -q '^tokenbroker_store_commit_duration_seconds_count [1-9]' <<<"$metrics" || fail "no store commits in metrics"
grep -q '^tokenbroker_build_info{' <<<"$metrics" || fail "no build info in metrics"
kill -TERM $pid; wait $pid || fail "broker did not exit cleanly on SIGTERM"; pid=

# TLS and mTLS, with certificates made here.
pki=$dir/pki; mkdir -p "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=smoke-ca \
  -keyout "$pki/ca-key.pem" -out "$pki/ca.pem" 2>/dev/null
leaf() { # name extension...
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
    -keyout "$pki/$1-key.pem" -out "$pki/$1.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca-key.pem" -CAcreateserial -days 1 \
    -extfile <(printf '%s\n' "${@:2}") -out "$pki/$1.pem" 2>/dev/null
}
leaf server "subjectAltName=IP:127.0.0.1" "extendedKeyUsage=serverAuth"
leaf client "extendedKeyUsage=clientAuth"
tlsflags=(--tls-cert "$pki/server.pem" --tls-key "$pki/server-key.pem")

start "${tlsflags[@]}"
grep -q '"tls":"tls"' "$dir/log" || fail "start log does not say tls"
curl -sf --cacert "$pki/ca.pem" "https://$http/v2/clientIdSecrets" -H "Authorization: Bearer $admin" | jq -e .clients >/dev/null \
  || fail "curl --cacert over TLS failed"
"$grpcurl" -cacert "$pki/ca.pem" -H "authorization: Bearer $admin" "$grpc" tokenbroker.v1.TokenService/ListTokens >/dev/null \
  || fail "grpcurl -cacert over TLS failed"
curl -sf --cacert "$pki/ca.pem" "https://$http/.well-known/openid-configuration" | jq -e --arg i "https://$http" '.issuer == $i' >/dev/null \
  || fail "issuer is not https under TLS"
stop

start "${tlsflags[@]}" --tls-client-ca "$pki/ca.pem"
if "$grpcurl" -cacert "$pki/ca.pem" "$grpc" list >/dev/null 2>&1; then fail "grpcurl without a client certificate got in under mTLS"; fi
"$grpcurl" -cacert "$pki/ca.pem" -cert "$pki/client.pem" -key "$pki/client-key.pem" -H "authorization: Bearer $admin" \
  "$grpc" tokenbroker.v1.TokenService/ListTokens >/dev/null || fail "grpcurl with a client certificate failed under mTLS"
curl -sf --cacert "$pki/ca.pem" "https://$http/v2/currentOrg" -H "Authorization: Bearer $admin" >/dev/null \
  || fail "REST without a client certificate failed under mTLS (it is optional there)"
kill -TERM $pid; wait $pid || fail "broker did not exit cleanly on SIGTERM"; pid=
echo "smoke: ok (bootstrap file, grpcurl list, curl create/list/delete/401, last admin kept, metrics, TLS, mTLS, graceful SIGTERM)"
