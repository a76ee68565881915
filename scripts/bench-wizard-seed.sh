#!/usr/bin/env bash
# bench-wizard-seed.sh: seeds a running plugboard, through GraphQL only, with
# the configWizard of BenchmarkConfigWizard (an integration of 5 slots, one
# of each scope, an instance of customer a1), registers an Ed25519 signing
# key and mints an embedding JWT for user u1 of customer a1 from the command
# line, and writes wrk scripts for the admin and the customer.
#
#   scripts/bench-wizard-seed.sh URL ADMIN_TOKEN OUTDIR
#   wrk -t2 -c50 -d8s -s OUTDIR/wizard-admin.lua URL/graphql
#   wrk -t2 -c50 -d8s -s OUTDIR/wizard-customer.lua URL/graphql
#
# URL is plugboard's base URL (http://127.0.0.1:8080), ADMIN_TOKEN an
# ORG_ADMIN token of the default organization (local mode prints one). The
# JWT is valid for 12 hours. Needs curl, python3 and openssl 3.
set -euo pipefail
url=$1 admin=$2 out=$3
mkdir -p "$out"

# gql QUERY [TOKEN]: the answer to one GraphQL operation; fails on errors.
gql() {
	local ans
	ans=$(python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1]}))' "$1" |
		curl -sf -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer ${2:-$admin}" \
			--data-binary @- "$url/graphql")
	if grep -q '"errors"\|"userErrors":\[{' <<<"$ans"; then
		echo "bench-wizard-seed: $ans" >&2
		exit 1
	fi
	echo "$ans"
}
# field JSON PATH...: one field of a JSON answer.
field() {
	python3 -c 'import json,sys; d=json.loads(sys.argv[1])
for k in sys.argv[2:]: d=d[k]
print(d)' "$@"
}

asana_key=2/1200000000000000/1200000000000001:0123456789abcdef0123456789abcdef
s=$(gql 'mutation {
  a1: createCustomer(input: { externalID: "a1", name: "A1" }) { customer { id } }
  cust: createConnection(input: { typeKey: "asana.apiKey", stableKey: "asana-customer", name: "Asana", scope: CUSTOMER }) { connection { id } }
  other: createConnection(input: { typeKey: "asana.apiKey", stableKey: "asana-other", name: "Asana other", scope: CUSTOMER }) { connection { id } }
  pg: createConnection(input: { typeKey: "postgres.basic", stableKey: "pg-global", name: "Warehouse", scope: ORGANIZATION_GLOBAL }) { connection { id } }
  orgcust: createConnection(input: { typeKey: "asana.apiKey", stableKey: "asana-orgcust", name: "Vendor Asana", scope: ORGANIZATION_CUSTOMER }) { connection { id } }
  user: createConnection(input: { typeKey: "asana.apiKey", stableKey: "asana-user", name: "My Asana", scope: USER }) { connection { id } }
}')
a1=$(field "$s" data a1 customer id)
cust=$(field "$s" data cust connection id) other=$(field "$s" data other connection id)
pg=$(field "$s" data pg connection id)
orgcust=$(field "$s" data orgcust connection id) user=$(field "$s" data user connection id)

s=$(gql "mutation {
  u1: createUser(input: { customerID: \"$a1\", externalID: \"u1\", email: \"u1@a1.example\" }) { user { id } }
  createIntegration(input: { key: \"wizard\", name: \"Wizard\", slots: [
    { key: \"asana\", label: \"Asana\", connectionID: \"$cust\" },
    { key: \"slack\", label: \"Slack\", typeKey: \"slack.oauth2\" },
    { key: \"warehouse\", label: \"Warehouse\", connectionID: \"$pg\" },
    { key: \"vendorAsana\", label: \"Vendor Asana\", connectionID: \"$orgcust\" },
    { key: \"myAsana\", label: \"My Asana\", connectionID: \"$user\" } ] }) { integration { id connectionSlots { key connectionID } } userErrors { message } }
}")
u1=$(field "$s" data u1 user id)
integration=$(field "$s" data createIntegration integration id)
slack=$(python3 -c 'import json,sys; print([x["connectionID"] for x in json.loads(sys.argv[1])["data"]["createIntegration"]["integration"]["connectionSlots"] if x["key"] == "slack"][0])' "$s")
s=$(gql "mutation { createInstance(input: { integrationID: \"$integration\", customerID: \"$a1\", name: \"A1 wizard\" }) { instance { id } userErrors { message } } }")
instance=$(field "$s" data createInstance instance id)

gql "mutation {
  reusable: saveCredential(input: { connectionID: \"$other\", customerID: \"$a1\", values: [{ key: \"apiKey\", value: \"$asana_key\" }] }) { credential { id } userErrors { message } }
  warehouse: saveCredential(input: { connectionID: \"$pg\", values: [{ key: \"host\", value: \"db.example.com\" }, { key: \"database\", value: \"app\" }, { key: \"user\", value: \"svc\" }, { key: \"password\", value: \"pg-secret\" }] }) { credential { id } userErrors { message } }
  vendor: saveCredential(input: { connectionID: \"$orgcust\", customerID: \"$a1\", values: [{ key: \"apiKey\", value: \"$asana_key\" }] }) { credential { id } userErrors { message } }
  slack: saveCredential(input: { connectionID: \"$slack\", instanceID: \"$instance\", values: [{ key: \"clientId\", value: \"slack-client-id\" }, { key: \"clientSecret\", value: \"slack-client-secret\" }] }) { credential { id } userErrors { message } }
  mine: saveCredential(input: { connectionID: \"$user\", userID: \"$u1\", values: [{ key: \"apiKey\", value: \"$asana_key\" }] }) { credential { id } userErrors { message } }
}" >/dev/null

# An Ed25519 signing key, and an embedding JWT (EdDSA) signed with openssl.
openssl genpkey -algorithm ed25519 -out "$out/embed.key" 2>/dev/null
pub=$(openssl pkey -in "$out/embed.key" -pubout)
gql "mutation { registerSigningKey(input: { kid: \"bench-1\", algorithm: EdDSA,
  publicKeyPEM: $(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$pub") }) { signingKey { id } userErrors { message } } }" >/dev/null
b64() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
now=$(date +%s)
header=$(printf '{"alg":"EdDSA","typ":"JWT","kid":"bench-1"}' | b64)
claims=$(printf '{"iss":"default","sub":"u1","customer":"a1","aud":"plugboard","iat":%d,"exp":%d}' "$now" $((now + 43200)) | b64)
printf '%s.%s' "$header" "$claims" >"$out/jwt.in"
sig=$(openssl pkeyutl -sign -inkey "$out/embed.key" -rawin -in "$out/jwt.in" | b64)
jwt="$header.$claims.$sig"
echo "$jwt" >"$out/customer.jwt"
gql '{ viewer { role } }' "$jwt" >/dev/null

# The wizard query of BenchmarkConfigWizard (internal/server/wizard_test.go).
query='query Wizard($id: ID!) { configWizard(instanceID: $id) { instance { id name } pages { key title elements { slotKey label connectionID scope typeKey typeLabel iconURL authKind action credential { id status values { key value secret isSet } } status connected connectLabel fields { key label type required default example placeholder description secret options { value label } pattern collection template value isSet updatedAt } existing { id status values { key value isSet } } errors { field code message } } } } }'
body=$(python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1], "variables": {"id": sys.argv[2]}}))' "$query" "$instance")
for who in admin customer; do
	tok=$admin
	[ "$who" = customer ] && tok=$jwt
	ans=$(curl -sf -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $tok" --data-binary "$body" "$url/graphql")
	n=$(python3 -c 'import json,sys; print(len(json.loads(sys.argv[1])["data"]["configWizard"]["pages"][0]["elements"]))' "$ans")
	[ "$n" = 5 ] || { echo "bench-wizard-seed: the $who wizard has $n elements: $ans" >&2; exit 1; }
	cat >"$out/wizard-$who.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $tok"
wrk.body = [[$body]]
LUA
done
echo "instance $instance; wrk scripts in $out/wizard-admin.lua and $out/wizard-customer.lua" >&2
