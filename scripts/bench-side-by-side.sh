#!/usr/bin/env bash
# bench-side-by-side.sh: plugboard's hot paths beside the two bare servers of
# bench/baselines, in one run, as medians of interleaved rounds and ratios.
#
#   scripts/bench-side-by-side.sh [ROUNDS]     # default 3 rounds
#
# It builds the bare net/http server, the bare gqlgen server, plugboard and
# the bundled plugins into a temporary directory, starts plugboard in local
# mode on a fresh SQLite data dir, and seeds a customer, a CUSTOMER asana
# connection with a saved API key credential and a RUNTIME token. Each round
# runs wrk (-t2 -c50, DURATION seconds, default 8) against, in turn: bare,
# gqlgen, plugboard's connectionTypes, and plugboard's runtime read
# (GET /runtime/v1/credentials/{id}, audited). It prints each measurement,
# then a table of medians with the ratios to bare net/http and bare gqlgen.
#
# Needs wrk (Debian: apt-get install -y wrk), curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-3}
duration=${DURATION:-8}
command -v wrk >/dev/null || { echo "bench-side-by-side: needs wrk (apt-get install -y wrk)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

echo "==> building the baselines, plugboard and the bundled plugins into $work" >&2
mkdir -p "$work/bin" "$work/plugins" "$work/data"
(cd bench/baselines/bare && go build -o "$work/bin/bareserver" .)
(cd bench/baselines/gql && go build -o "$work/bin/gqlserver" ./cmd/server)
go build -o "$work/bin/plugboard" ./cmd/plugboard
go build -o "$work/plugins/" ./plugins/...
mapfile -t plugins < <(ls "$work/plugins")
"$work/bin/plugboard" plugins pin --plugin-dir "$work/plugins" "${plugins[@]}" >&2

bare=$(free_port) gql=$(free_port) pb=$(free_port)
"$work/bin/bareserver" -addr "127.0.0.1:$bare" 2>"$work/bare.log" & pids+=($!)
"$work/bin/gqlserver" -addr "127.0.0.1:$gql" 2>"$work/gql.log" & pids+=($!)
"$work/bin/plugboard" serve --dev --data-dir "$work/data" --plugin-dir "$work/plugins" \
	--addr "127.0.0.1:$pb" >"$work/plugboard.log" 2>&1 & pids+=($!)
for _ in $(seq 1 300); do
	curl -sf -o /dev/null "http://127.0.0.1:$pb/readyz" && break
	sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$pb/readyz" || { cat "$work/plugboard.log" >&2; exit 1; }

# gql QUERY: plugboard's answer to one GraphQL operation (local mode: the admin).
gql() {
	python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1]}))' "$1" |
		curl -sf -X POST -H 'Content-Type: application/json' --data-binary @- "http://127.0.0.1:$pb/graphql"
}
# field JSON PATH...: one field of a JSON answer.
field() {
	python3 -c 'import json,sys; d=json.loads(sys.argv[1])
for k in sys.argv[2:]: d=d[k]
print(d)' "$@"
}

echo "==> seeding a customer, an asana API key credential and a RUNTIME token" >&2
seed=$(gql 'mutation {
  createCustomer(input: { externalID: "bench", name: "Bench" }) { customer { id } }
  createConnection(input: { typeKey: "asana.apiKey", stableKey: "asana", name: "Asana", scope: CUSTOMER }) { connection { id } }
  createAPIToken(input: { role: RUNTIME, name: "bench" }) { token }
}')
customer=$(field "$seed" data createCustomer customer id)
connection=$(field "$seed" data createConnection connection id)
runtime_token=$(field "$seed" data createAPIToken token)
saved=$(gql "mutation { saveCredential(input: { connectionID: \"$connection\", customerID: \"$customer\",
  values: [{ key: \"apiKey\", value: \"2/1200000000000000/1200000000000001:0123456789abcdef0123456789abcdef\" }] }) {
  credential { id status } userErrors { message } } }")
credential=$(field "$saved" data saveCredential credential id)

cat >"$work/types.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"query":"{ connectionTypes(first: 10) { edges { node { key label description inputs { key label type required } } } } }"}'
LUA
cat >"$work/runtime.lua" <<LUA
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer $runtime_token"
LUA
curl -sf -o /dev/null -H "Authorization: Bearer $runtime_token" "http://127.0.0.1:$pb/runtime/v1/credentials/$credential" ||
	{ echo "bench-side-by-side: the runtime read does not answer 200" >&2; exit 1; }

# measure NAME SCRIPT URL: one wrk run; prints "NAME REQ_PER_S".
measure() {
	local out rps
	out=$(wrk -t2 -c50 -d"${duration}s" -s "$2" "$3")
	if grep -q 'Non-2xx' <<<"$out"; then
		echo "bench-side-by-side: $1 answered errors:" >&2
		echo "$out" >&2
		exit 1
	fi
	rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
	echo "$1 $rps"
}

results="$work/results.txt"
for r in $(seq 1 "$rounds"); do
	echo "==> round $r of $rounds" >&2
	measure bare bench/baselines/post.lua "http://127.0.0.1:$bare/graphql" | tee -a "$results"
	measure gqlgen bench/baselines/post.lua "http://127.0.0.1:$gql/graphql" | tee -a "$results"
	measure connectionTypes "$work/types.lua" "http://127.0.0.1:$pb/graphql" | tee -a "$results"
	measure runtime-read "$work/runtime.lua" "http://127.0.0.1:$pb/runtime/v1/credentials/$credential" | tee -a "$results"
done

python3 - "$results" "$rounds" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, rps = line.split()
    rows.setdefault(name, []).append(float(rps))
med = {k: statistics.median(v) for k, v in rows.items()}
print(f"\nmedians of {sys.argv[2]} interleaved rounds (wrk -t2 -c50), SQLite")
print("| path | req/s | x bare net/http | x bare gqlgen |")
print("|---|---|---|---|")
for name in ["bare", "gqlgen", "connectionTypes", "runtime-read"]:
    print(f"| {name} | {med[name]:,.0f} | {med[name] / med['bare']:.3f} | {med[name] / med['gqlgen']:.2f} |")
PY
