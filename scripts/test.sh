#!/usr/bin/env bash
# test.sh: plugboard's checks: go vet, generated code is current, and the
# tests of the root module and of plugins/sdk. Every step runs; the script
# fails at the end if any step failed.
#
# PostgreSQL halves of the store tests run when PLUGBOARD_TEST_POSTGRES_URL
# names a server (.ci/run sets it); otherwise they skip, or fail when CI=true.
# The GraphiQL browser test (internal/server/browsertest, part of the root
# module's tests) needs Debian's chromium and `npm ci` in its folder; .ci/run
# installs both. Without them it skips, or fails when CI=true.
# TEST_TIMEOUT (default 15m) bounds each `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."

timeout=${TEST_TIMEOUT:-15m}
failed=()

# step NAME COMMAND...: runs COMMAND under a header and records a failure.
step() {
	local name=$1
	shift
	printf '\n===== %s =====\n' "$name"
	if "$@"; then
		echo "----- ok: $name"
	else
		echo "----- FAILED: $name"
		failed+=("$name")
	fi
}

in_sdk() { (cd plugins/sdk && "$@"); }

go version
if [[ -n ${PLUGBOARD_TEST_POSTGRES_URL:-} ]]; then
	echo "PostgreSQL tests: on (PLUGBOARD_TEST_POSTGRES_URL is set)"
else
	echo "PostgreSQL tests: skipped (set PLUGBOARD_TEST_POSTGRES_URL to run them)"
fi

step "go vet (root module)" go vet ./...
step "go vet (plugins/sdk)" in_sdk go vet ./...
step "generated code is current" bash scripts/check-generated.sh
step "go test (root module)" go test -count=1 -timeout "$timeout" ./...
step "go test (plugins/sdk)" in_sdk go test -count=1 -timeout "$timeout" ./...
# Stops the shared PostgreSQL cluster for 5 s, so it runs alone, after the
# rest; it skips unless it can control the cluster (root, pg_ctlcluster).
step "fault test: PostgreSQL stopped under load" env PLUGBOARD_TEST_PG_OUTAGE=1 \
	go test -count=1 -timeout 5m -run '^TestFaultPostgresStoppedUnderLoad$' ./internal/server

echo
if ((${#failed[@]})); then
	printf 'FAILED: %s\n' "${failed[@]}"
	exit 1
fi
echo "all checks passed"
