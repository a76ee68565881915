package server_test

import (
	"fmt"
	"testing"

	"github.com/plugboard/plugboard/internal/server/servertest"
)

const typesQuery = `{ connectionTypes(first: 100) { totalCount edges { node { key
	inputs { key shown default } oauth2 { authorizeURL tokenURL clientIDInput } } } } }`

const typeQuery = `query($key: String!) { connectionType(key: $key) { key
	inputs { key shown default } oauth2 { authorizeURL tokenURL clientIDInput } } }`

// typeView is what one viewer sees of one connection type.
type typeView struct {
	inputs, hidden []string // every input key; those with shown=false
	oauth2         bool
}

func viewOf(node map[string]any) typeView {
	v := typeView{inputs: []string{}, hidden: []string{}, oauth2: node["oauth2"] != nil}
	ins, _ := node["inputs"].([]any)
	for _, in := range ins {
		m, _ := in.(map[string]any)
		key, _ := m["key"].(string)
		v.inputs = append(v.inputs, key)
		if m["shown"] != true {
			v.hidden = append(v.hidden, key)
		}
	}
	return v
}

// typesAs returns what token sees of every connection type.
func typesAs(t *testing.T, env *servertest.Env, token string) map[string]typeView {
	t.Helper()
	r := env.DoAs(t, token, typesQuery, nil)
	mustOK(t, r)
	out := map[string]typeView{}
	edges, _ := servertest.Get(r.Data, "connectionTypes.edges").([]any)
	for i := range edges {
		node, _ := servertest.Get(r.Data, fmt.Sprintf("connectionTypes.edges.%d.node", i)).(map[string]any)
		out[node["key"].(string)] = viewOf(node)
	}
	return out
}

// typeAs returns what token sees of the connection type key.
func typeAs(t *testing.T, env *servertest.Env, token, key string) typeView {
	t.Helper()
	r := env.DoAs(t, token, typeQuery, map[string]any{"key": key})
	mustOK(t, r)
	node, _ := servertest.Get(r.Data, "connectionType").(map[string]any)
	if node == nil {
		t.Fatalf("connectionType(%s): %s", key, r.Raw)
	}
	return viewOf(node)
}

// checkViews: the admin sees every declared input; the customer exactly the
// admin's shown ones, and no OAuth 2.0 spec.
func checkViews(t *testing.T, what string, admin, customer typeView) {
	t.Helper()
	if len(customer.hidden) > 0 {
		t.Errorf("%s: a customer sees hidden inputs %v", what, customer.hidden)
	}
	if customer.oauth2 {
		t.Errorf("%s: a customer sees the OAuth 2.0 spec", what)
	}
	if len(customer.inputs) != len(admin.inputs)-len(admin.hidden) {
		t.Errorf("%s: the customer sees %v; the admin %v, of which hidden %v", what, customer.inputs, admin.inputs, admin.hidden)
	}
}

// TestCustomerCatalogShowsNoHiddenInput: a customer user's connectionTypes
// and connectionType list only the inputs shown to customers, for every
// bundled type, while the admin sees them all; the catalog cache never
// serves one's answer to the other, whoever asks first.
func TestCustomerCatalogShowsNoHiddenInput(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana", "slack", "postgres", "shopify", "msgraph"}})
	k := newEmbedKey(t, "wizard")
	registerKey(t, env, env.AdminToken, k)
	mustOK(t, env.Do(t, `mutation { updateOrganization(input: {autoCreateCustomers: true}) { organization { id } } }`, nil))
	cust := k.token(t, "default", "acme", "ann")

	// The admin asks first, so its answer is in the cache.
	admin := typesAs(t, env, env.AdminToken)
	customer := typesAs(t, env, cust)
	hiddenTotal := 0
	for key, a := range admin {
		hiddenTotal += len(a.hidden)
		checkViews(t, "connectionTypes "+key, a, customer[key])
	}
	if hiddenTotal == 0 || len(customer) != len(admin) || len(admin) < 5 {
		t.Fatalf("the admin sees %d hidden inputs over %d types; the customer %d types", hiddenTotal, len(admin), len(customer))
	}
	if again := typesAs(t, env, env.AdminToken); fmt.Sprint(again) != fmt.Sprint(admin) {
		t.Fatalf("after a customer asked, the admin sees %v; before %v", again, admin)
	}
	// connectionType: the customer asks first this time.
	for key, a := range admin {
		c := typeAs(t, env, cust, key)
		if got := typeAs(t, env, env.AdminToken, key); fmt.Sprint(got) != fmt.Sprint(a) {
			t.Errorf("connectionType(%s) for the admin after a customer: %v; want %v", key, got, a)
		}
		checkViews(t, "connectionType "+key, a, c)
		if again := typeAs(t, env, cust, key); fmt.Sprint(again) != fmt.Sprint(c) {
			t.Errorf("connectionType(%s) for the customer after the admin: %v; want %v", key, again, c)
		}
	}
}
