#!/usr/bin/env bash
# Regenerates gen/ from proto/ with the plugin versions pinned in tools/go.mod
# and buf pinned in tools/buf/go.mod. Usage: bash tools/generate.sh [--check]
#   --check  also fails if gen/ differs from what is committed (used by CI).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/tools/bin"
mkdir -p "$bin"
# `go install tool` builds every tool the module pins; Go's build cache makes
# repeat runs cheap.
(cd tools && GOBIN="$bin" go install tool)
(cd tools/buf && GOBIN="$bin" go install tool)
export PATH="$bin:$PATH"

buf lint
# Remove generated files first so a proto that was deleted leaves no stale
# output behind (hand-written files in gen/, such as gen/openapiv2/embed.go,
# are kept).
find gen -type f \( -name '*.pb.go' -o -name '*.pb.gw.go' -o -name '*.swagger.json' \) -delete 2>/dev/null || true
buf generate

if [[ "${1:-}" == "--check" ]]; then
  if [[ -n "$(git status --porcelain -- gen)" ]]; then
    echo "gen/ is out of date with proto/: run 'bash tools/generate.sh' and commit the result" >&2
    git status --porcelain -- gen >&2
    git --no-pager diff --stat -- gen >&2
    exit 1
  fi
  echo "gen/ is up to date"
fi
