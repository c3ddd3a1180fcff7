#!/usr/bin/env bash
# Prints the README's curl and grpcurl examples as one script: every sh
# block from "## Using it with curl" up to the end of "## Using it with
# grpcurl", unchanged. The smoke tests run it against a broker listening on
# the README's addresses (or, with HTTP and GRPC set, rewrite only the two
# addresses) and check the transcript.
set -euo pipefail
readme=${1:-"$(dirname "$0")/../README.md"}
awk '
  /^## Using it with curl/ { on = 1 }
  on && /^## / && !/^## Using it with (curl|grpcurl)/ { exit }
  on && /^```sh$/ { code = 1; next }
  code && /^```$/ { code = 0; next }
  code { print }
' "$readme" | if [[ -n ${HTTP:-} || -n ${GRPC:-} ]]; then
  sed -e "s/127\.0\.0\.1:8080/${HTTP:-127.0.0.1:8080}/g" -e "s/127\.0\.0\.1:50051/${GRPC:-127.0.0.1:50051}/g"
else
  cat
fi
