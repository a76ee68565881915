#!/usr/bin/env bash
# check-generated.sh: fails if committed generated code is stale.
#   - ent + gqlgen (ent/, graph/): `go generate .` at the repository root;
#   - plugins/sdk protobuf (*.pb.go): `go generate ./internal/proto` in
#     plugins/sdk, which needs protoc (Debian: protobuf-compiler and
#     libprotobuf-dev); skipped without it, except under CI=true, where a
#     missing protoc fails the check.
# The generators run in a temporary copy of the tree, which is then compared
# with this one (new and deleted files included). So the working tree is
# never modified (gqlgen rewrites hand-written resolver files), and
# uncommitted work is checked as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -C . --exclude=./.git -cf - . | tar -C "$tmp/" -xf -
status=0

# check NAME COMMAND DIR...: runs COMMAND in the copy, then compares DIRs.
# A protoc version comment in a .pb.go header may differ.
check() {
	local name=$1 cmd=$2 dir
	shift 2
	echo "--- $name: $cmd"
	if ! (cd "$tmp" && bash -c "$cmd"); then
		echo "FAIL: $name: the generator failed" >&2
		status=1
		return
	fi
	: >"$tmp/.diff"
	for dir in "$@"; do
		diff -ruN -I '^//[[:space:]]*protoc[[:space:]]\+v' "$dir" "$tmp/$dir" >>"$tmp/.diff" || true
	done
	if [[ -s $tmp/.diff ]]; then
		echo "FAIL: $name: generated code is not current; run the generator and commit:" >&2
		head -n 100 "$tmp/.diff" >&2
		status=1
	else
		echo "ok: $name is current"
	fi
}

check "ent + gqlgen" "go generate ." ent graph
if command -v protoc >/dev/null 2>&1; then
	check "plugins/sdk protobuf" "cd plugins/sdk && go generate ./internal/proto" plugins/sdk/internal/proto
elif [[ ${CI:-} == true ]]; then
	echo "FAIL: plugins/sdk protobuf: protoc is not installed (CI=true: install protobuf-compiler and libprotobuf-dev)" >&2
	status=1
else
	echo "--- plugins/sdk protobuf: skipped, protoc is not installed (committed .pb.go files not checked)"
fi
exit "$status"
