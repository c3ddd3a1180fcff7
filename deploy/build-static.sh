#!/bin/sh
# Builds the static tokenbroker binary that deploy/Containerfile copies into
# its image (the Containerfile runs this very script), so building it here
# checks the image's binary without a container runtime:
#
#   sh deploy/build-static.sh /tmp/tokenbroker && file /tmp/tokenbroker
#
# VERSION and COMMIT, if set, are stamped into the binary (see
# server/buildinfo); by default the toolchain's build information is used.
set -eu
out=${1:?usage: build-static.sh OUTPUT}
cd "$(dirname "$0")/.."
pkg=github.com/tokenbroker/tokenbroker/server/buildinfo
ldflags="-s -w"
[ -n "${VERSION:-}" ] && ldflags="$ldflags -X $pkg.Version=$VERSION"
[ -n "${COMMIT:-}" ] && ldflags="$ldflags -X $pkg.Commit=$COMMIT"
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out" ./cmd/tokenbroker
# Refuse a binary that would need a libc in the image.
if go version -m "$out" | grep -q 'CGO_ENABLED=1'; then
  echo "build-static.sh: $out was built with cgo" >&2
  exit 1
fi
echo "built $out ($(go version -m "$out" | head -1 | cut -d' ' -f2), CGO_ENABLED=0)"
