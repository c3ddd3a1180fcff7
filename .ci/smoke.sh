#!/usr/bin/env bash
# Smoke test as a new user would do it: start the broker with the README
# command, list services with grpcurl, and run the README curl flow
# (create → list → delete → the deleted token gets 401).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
grpc=127.0.0.1:$((20000 + RANDOM % 10000))
http=127.0.0.1:$((30000 + RANDOM % 10000))
go build -o "$dir/tokenbroker" ./cmd/tokenbroker
(cd tools && GOBIN="$PWD/bin" go install github.com/fullstorydev/grpcurl/cmd/grpcurl)
grpcurl=tools/bin/grpcurl

"$dir/tokenbroker" serve --data "$dir/d/tb.db" --bootstrap-file "$dir/d/admin.json" \
  --grpc-addr "$grpc" --http-addr "$http" >"$dir/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -sf "http://$http/healthz" >/dev/null && break; sleep 0.1; done

fail() { echo "smoke: $*"; echo "--- broker log"; cat "$dir/log"; exit 1; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

services=$("$grpcurl" -plaintext "$grpc" list)
grep -q '^tokenbroker.v1.TokenService$' <<<"$services" || fail "TokenService not listed: $services"
grep -q '^grpc.health.v1.Health$' <<<"$services" || fail "Health not listed: $services"

admin=$(json "['token']" <"$dir/d/admin.json")
[[ $(stat -c %a "$dir/d/admin.json") == 600 ]] || fail "bootstrap file is not mode 0600"
created=$(curl -sf -X POST "http://$http/v2/clientIdSecrets" -H "Authorization: Bearer $admin" \
  -H 'Content-Type: application/json' -d '{"roles":["b4ed0e9e-67e8-47b6-8b58-c6629be961a9"]}') || fail "create failed"
cid=$(json "['clientId']" <<<"$created"); tok=$(json "['token']" <<<"$created")
curl -sf "http://$http/v2/clientIdSecrets" -H "Authorization: Bearer $admin" | grep -q "$cid" || fail "list lacks $cid"
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://$http/v2/clientIdSecrets/$cid" -H "Authorization: Bearer $admin")
[[ $code == 200 ]] || fail "delete: HTTP $code"
code=$(curl -s -o "$dir/body" -w '%{http_code}' "http://$http/v2/currentOrg" -H "Authorization: Bearer $tok")
[[ $code == 401 ]] || fail "deleted token: HTTP $code, want 401"
grep -q '"ID":340018' "$dir/body" || fail "deleted token: body $(cat "$dir/body")"
# Invalid UTF-8 in a path parameter: 400 in Astra's body, not a 500.
code=$(curl -s -o "$dir/body" -w '%{http_code}' "http://$http/v2/organizations/roles/%FF")
[[ $code == 400 ]] || fail "roles/%FF: HTTP $code, want 400"
grep -q '"message":"roleId: must be valid UTF-8"' "$dir/body" || fail "roles/%FF: body $(cat "$dir/body")"
# grpcurl with a credential, as an operator would debug.
"$grpcurl" -plaintext -H "authorization: Bearer $admin" "$grpc" tokenbroker.v1.TokenService/GetCurrentOrg | grep -q '"id"' \
  || fail "grpcurl GetCurrentOrg failed"
kill -TERM $pid; wait $pid || fail "broker did not exit cleanly on SIGTERM"
echo "smoke: ok (grpcurl list, curl create/list/delete/401, grpcurl call, graceful SIGTERM)"
