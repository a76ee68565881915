#!/usr/bin/env bash
# bench-startup.sh: how long `plugboard serve` takes from exec to ready
# (/readyz answering 200) with every bundled plugin pinned and loaded.
#
#   scripts/bench-startup.sh [RUNS]        # default 10 runs
#
# It builds plugboard and the bundled plugins (go build -o DIR/ ./plugins/...)
# into a fresh temporary directory, pins the plugins, then RUNS times: starts
# `plugboard serve --data-dir <fresh tmp dir> --plugin-dir DIR --addr
# 127.0.0.1:<free port>`, polls /readyz every 10 ms until it answers 200,
# records the wall time since the exec, and stops the server (SIGTERM, then
# waits for it and its plugins to exit). Every run has a fresh data dir: the
# server creates the master key and the SQLite database and migrates it
# each time. With REUSE_DATA_DIR=1 all runs share one data dir created by an
# untimed first start, so only the first start pays for them.
#
# Prints each run, then the median, min and max in milliseconds. The poll
# interval bounds the resolution (about 10 ms plus one curl).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-10}
work=$(mktemp -d)
server_pid=
cleanup() {
	if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

now_ms() { echo $(($(date +%s%N) / 1000000)); }

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

echo "==> building plugboard and the bundled plugins into $work" >&2
mkdir -p "$work/bin" "$work/plugins"
go build -o "$work/bin/plugboard" ./cmd/plugboard
go build -o "$work/plugins/" ./plugins/...
mapfile -t plugins < <(ls "$work/plugins")
"$work/bin/plugboard" plugins pin --plugin-dir "$work/plugins" "${plugins[@]}" >&2
echo "==> plugins: $(cd "$work/plugins" && ls -I plugboard.lock | tr '\n' ' ')" >&2

# start_and_wait DATA_DIR: prints the milliseconds from exec to ready.
start_and_wait() {
	local data=$1 port start ready code
	port=$(free_port)
	start=$(now_ms)
	"$work/bin/plugboard" serve --data-dir "$data" --plugin-dir "$work/plugins" \
		--addr "127.0.0.1:$port" >"$data.log" 2>&1 &
	server_pid=$!
	while :; do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$port/readyz" || true)
		if [[ $code == 200 ]]; then
			ready=$(now_ms)
			break
		fi
		if ! kill -0 "$server_pid" 2>/dev/null; then
			echo "plugboard exited before it was ready:" >&2
			cat "$data.log" >&2
			exit 1
		fi
		if (($(now_ms) - start > 60000)); then
			echo "plugboard not ready after 60 s:" >&2
			cat "$data.log" >&2
			exit 1
		fi
		sleep 0.01
	done
	kill "$server_pid"
	wait "$server_pid" 2>/dev/null || true
	server_pid=
	echo $((ready - start))
}

shared=
if [[ ${REUSE_DATA_DIR:-0} == 1 ]]; then
	shared="$work/data-shared"
	echo "==> untimed first start (creates the master key and the database)" >&2
	start_and_wait "$shared" >/dev/null
fi

times=()
for i in $(seq 1 "$runs"); do
	data=${shared:-"$work/data-$i"}
	ms=$(start_and_wait "$data")
	times+=("$ms")
	echo "run $i: ${ms} ms"
done

sorted=$(printf '%s\n' "${times[@]}" | sort -n)
n=${#times[@]}
min=$(head -n1 <<<"$sorted")
max=$(tail -n1 <<<"$sorted")
if ((n % 2)); then
	median=$(sed -n "$((n / 2 + 1))p" <<<"$sorted")
else
	a=$(sed -n "$((n / 2))p" <<<"$sorted")
	b=$(sed -n "$((n / 2 + 1))p" <<<"$sorted")
	median=$(((a + b) / 2))
fi
echo "start to ready over $n runs ($(nproc) cores, data dir: $([[ -n $shared ]] && echo reused || echo fresh each run)): median ${median} ms, min ${min} ms, max ${max} ms"
