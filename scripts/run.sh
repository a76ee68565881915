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

echo "==> pinning the plugins"
bin/plugboard plugins pin --plugin-dir "$PLUGIN_DIR"

echo "==> starting plugboard (Ctrl-C stops it)"
exec bin/plugboard serve --dev --data-dir "$DATA_DIR" --plugin-dir "$PLUGIN_DIR" "$@"
