#!/usr/bin/env bash
# bench-side-by-side.sh: plugboard's hot paths beside the two bare servers of
# bench/baselines (plain net/http, bare gqlgen), in one run, as medians of
# interleaved rounds and ratios. The whole BENCHMARKS.md summary table comes
# from two runs of it: one on SQLite, one on PostgreSQL.
#
#   scripts/bench-side-by-side.sh [ROUNDS]          # SQLite, default 3 rounds
#   POSTGRES_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable \
#     scripts/bench-side-by-side.sh 3               # PostgreSQL: a fresh pbbench_<pid> database
#
# It builds the baselines, plugboard and the bundled plugins, starts plugboard
# (--dev, a fresh data dir, --pprof-addr), a local OAuth 2.0 token endpoint,
# and seeds through the GraphQL API: an asana API key and an msgraph OAuth 2.0
# (client credentials) credential, a RUNTIME token, an integration with 5
# connection slots (one of each scope) with an instance, an ORG_ADMIN token
# and an RS256 embedding token of a customer's user, SAVE_CUSTOMERS (500)
# customers for saveCredential and PAGE_CUSTOMERS (10 000) credentials for the
# credentials page. Each round runs wrk -t2 -c50 for DURATION (8) seconds
# against every row in turn: bare, gqlgen, connectionTypes, the runtime read
# (API key; OAuth 2.0 with a fresh token), configWizard as the admin and as the
# customer, saveCredential (the plugin's Validate runs; each wrk thread on its
# own half of the customers) and the credentials page (first: 100). Every row
# is checked before and after its run: a non-2xx answer or a GraphQL error
# fails the run. ROWS=a,b limits the plugboard rows; PROFILE_DIR=dir writes a
# CPU profile of plugboard for each row of the last round; KEEP_WORK=1 keeps
# the temporary directory (logs).
#
# Needs go, wrk (Debian: apt-get install -y wrk), python3, openssl, and psql
# for PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/bench_side_by_side.py "$@"
