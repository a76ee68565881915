#!/usr/bin/env bash
# test.sh: plugboard's checks: go.mod and go.sum are tidy, go vet,
# staticcheck on hand-written code, generated code is current, and the tests
# of the root module and of plugins/sdk. Every step runs; the script fails at
# the end if any step failed.
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
skipped=()

# A step's COMMAND exits with skip_rc, after setting skip_reason, when what it
# checks did not run.
skip_rc=3
skip_reason=

# step NAME COMMAND...: runs COMMAND under a header and records a failure or
# a skip.
step() {
	local name=$1 rc=0
	shift
	printf '\n===== %s =====\n' "$name"
	skip_reason=
	"$@" || rc=$?
	if ((rc == 0)); then
		echo "----- ok: $name"
	elif ((rc == skip_rc)) && [[ -n $skip_reason ]]; then
		echo "----- skipped: $name: $skip_reason"
		skipped+=("$name: $skip_reason")
	else
		echo "----- FAILED: $name"
		failed+=("$name")
	fi
}

in_sdk() { (cd plugins/sdk && "$@"); }
in_tools() { (cd scripts/tools && "$@"); }

# pg_outage runs TestFaultPostgresStoppedUnderLoad verbosely; when the test
# skipped it returns skip_rc with the test's reason.
pg_outage() {
	local test=TestFaultPostgresStoppedUnderLoad log rc=0
	log=$(mktemp)
	PLUGBOARD_TEST_PG_OUTAGE=1 go test -v -count=1 -timeout 5m -run "^$test\$" ./internal/server 2>&1 |
		tee "$log" || rc=$?
	if ((rc == 0)) && grep -q -- "^--- SKIP: $test " "$log"; then
		# With -v, the line before "--- SKIP" is the t.Skip message.
		skip_reason=$(grep -B1 -- "^--- SKIP: $test " "$log" | head -n 1 | sed 's/^[[:space:]]*[^[:space:]]*\.go:[0-9]*: //')
		skip_reason=${skip_reason:-the test skipped}
		rc=$skip_rc
	fi
	rm -f "$log"
	return "$rc"
}

go version
if [[ -n ${PLUGBOARD_TEST_POSTGRES_URL:-} ]]; then
	echo "PostgreSQL tests: on (PLUGBOARD_TEST_POSTGRES_URL is set)"
else
	echo "PostgreSQL tests: skipped (set PLUGBOARD_TEST_POSTGRES_URL to run them)"
fi

step "go.mod and go.sum are tidy (root module)" go mod tidy -diff
step "go.mod and go.sum are tidy (plugins/sdk)" in_sdk go mod tidy -diff
step "go.mod and go.sum are tidy (scripts/tools)" in_tools go mod tidy -diff
step "go vet (root module)" go vet ./...
step "go vet (plugins/sdk)" in_sdk go vet ./...
step "staticcheck (root module)" bash scripts/staticcheck.sh
step "staticcheck (plugins/sdk)" in_sdk bash ../../scripts/staticcheck.sh
step "generated code is current" bash scripts/check-generated.sh
step "go test (root module)" go test -count=1 -timeout "$timeout" ./...
step "go test (plugins/sdk)" in_sdk go test -count=1 -timeout "$timeout" ./...
# Stops the shared PostgreSQL cluster for 5 s, so it runs alone, after the
# rest; it skips unless it can control the cluster (root, pg_ctlcluster).
step "fault test: PostgreSQL stopped under load" pg_outage

echo
if ((${#skipped[@]})); then
	printf 'skipped: %s\n' "${skipped[@]}"
fi
if ((${#failed[@]})); then
	printf 'FAILED: %s\n' "${failed[@]}"
	exit 1
fi
if ((${#skipped[@]})); then
	echo "all checks passed but ${#skipped[@]} skipped"
else
	echo "all checks passed"
fi
