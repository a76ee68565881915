#!/usr/bin/env bash
# staticcheck.sh: runs staticcheck on the hand-written code of the module in
# the current directory. The version is pinned by the tool directive in
# scripts/tools/go.mod (its own module, so the project's go.mod does not carry
# staticcheck's dependencies); `go tool` builds it from the module cache.
#
# Generated code is left out: the ent packages (all but ent/schema),
# graph/generated and graph/model, and any finding in a file marked
# "Code generated ... DO NOT EDIT." (benchtest, *.pb.go).
set -euo pipefail
tools_mod="$(cd "$(dirname "$0")/tools" && pwd)/go.mod"
module=$(go list -m)

pkgs=()
while IFS= read -r p; do
	case ${p#"$module"} in
	/ent/schema | /ent/schema/*) ;;
	/ent | /ent/* | /graph/generated | /graph/model) continue ;;
	esac
	pkgs+=("$p")
done < <(go list ./...)

out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
go tool -modfile="$tools_mod" staticcheck "${pkgs[@]}" >"$out" 2>&1 || rc=$?

# generated FILE: whether FILE carries Go's generated-code marker.
generated() {
	[[ -f $1 ]] && grep -qE '^// Code generated .* DO NOT EDIT\.$' "$1"
}

findings=0 skipped=0
while IFS= read -r line; do
	if generated "${line%%:*}"; then
		skipped=$((skipped + 1))
		continue
	fi
	printf '%s\n' "$line"
	findings=$((findings + 1))
done <"$out"
if ((skipped)); then
	echo "($skipped findings in generated files left out)"
fi
if ((findings)); then
	exit 1
fi
if ((rc != 0 && skipped == 0)); then
	echo "staticcheck failed (exit $rc) without a finding" >&2
	exit 1
fi
echo "staticcheck: no findings in ${#pkgs[@]} packages"
