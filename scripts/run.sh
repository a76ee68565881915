#!/usr/bin/env bash
# Build plugboard and the bundled plugins, pin the plugins, and start the
# server in local mode: embedded SQLite under ./data, GraphiQL at
# http://localhost:8080/graphql with an admin token filled in.
# Extra arguments go to `plugboard serve` (e.g. --addr :9090).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA_DIR="${PLUGBOARD_DATA_DIR:-./data}"
PLUGIN_DIR="${PLUGBOARD_PLUGIN_DIR:-$DATA_DIR/plugins}"

echo "==> building plugboard"
mkdir -p bin
go build -o bin/plugboard ./cmd/plugboard

echo "==> building the bundled plugins into $PLUGIN_DIR"
mkdir -p "$PLUGIN_DIR"
go build -o "$PLUGIN_DIR/" ./plugins/...

# Pin the bundled plugins by name: they were just built here, so a rebuild's
# new hashes are expected (--force). Other binaries in the directory keep
# their pins; a plugin added by hand is pinned with `plugboard plugins pin NAME`.
bundled=()
for main in plugins/*/main.go; do
	bundled+=("$(basename "$(dirname "$main")")")
done
echo "==> pinning the bundled plugins: ${bundled[*]}"
bin/plugboard plugins pin --plugin-dir "$PLUGIN_DIR" --force "${bundled[@]}"

echo "==> starting plugboard (Ctrl-C stops it)"
exec bin/plugboard serve --dev --data-dir "$DATA_DIR" --plugin-dir "$PLUGIN_DIR" "$@"
