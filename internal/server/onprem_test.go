package server_test

import (
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/server/servertest"
)

const createOnPremMutation = `mutation($in: CreateOnPremResourceInput!) { createOnPremResource(input: $in) {
	resource { id name target status tokenPrefix lastSeenAt agentVersion customer { externalID } }
	token userErrors { field code message } } }`

const onPremListQuery = `query($c: ID!) { onPremResources(customerID: $c) { id name target status lastSeenAt agentVersion tokenPrefix } }`

// createCustomer creates a customer with externalID and returns its id.
func createOnPremCustomer(t *testing.T, env *servertest.Env, externalID string) string {
	t.Helper()
	r := env.Do(t, `mutation($e: String!) { createCustomer(input: {externalID: $e, name: $e}) { customer { id } } }`,
		map[string]any{"e": externalID})
	mustOK(t, r)
	return servertest.Str(r.Data, "createCustomer.customer.id")
}

// createOnPrem creates an on-prem resource through GraphQL and returns its
// id and agent token.
func createOnPrem(t *testing.T, env *servertest.Env, customerID, name, target string) (id, token string) {
	t.Helper()
	r := env.Do(t, createOnPremMutation, map[string]any{"in": map[string]any{
		"customerID": customerID, "name": name, "target": target}})
	mustOK(t, r)
	return servertest.Str(r.Data, "createOnPremResource.resource.id"), servertest.Str(r.Data, "createOnPremResource.token")
}

func TestOnPremResourceLifecycle(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"postgres"}}, func(t *testing.T, env *servertest.Env) {
		acme := createOnPremCustomer(t, env, "acme")
		other := createOnPremCustomer(t, env, "globex")
		id, token := createOnPrem(t, env, acme, "warehouse db", "db.internal:5432")
		if !strings.HasPrefix(token, "pbagent_") || len(token) < 40 {
			t.Fatalf("agent token %q", token)
		}
		// Listed with its state, never with its token.
		r := env.Do(t, onPremListQuery, map[string]any{"c": acme})
		mustOK(t, r)
		if servertest.Str(r.Data, "onPremResources.0.id") != id || servertest.Str(r.Data, "onPremResources.0.status") != "DISCONNECTED" ||
			servertest.Get(r.Data, "onPremResources.0.lastSeenAt") != nil ||
			!strings.HasPrefix(token, servertest.Str(r.Data, "onPremResources.0.tokenPrefix")) {
			t.Fatalf("onPremResources: %s", r.Raw)
		}
		r = env.Do(t, onPremListQuery, map[string]any{"c": other})
		mustOK(t, r)
		if n := len(servertest.Get(r.Data, "onPremResources").([]any)); n != 0 {
			t.Fatalf("another customer lists %d resources", n)
		}
		// Bad input: field errors, nothing stored.
		for _, bad := range []map[string]any{
			{"customerID": acme, "name": "x", "target": "db.internal"},
			{"customerID": acme, "name": "x", "target": "db.internal:99999"},
			{"customerID": acme, "name": "x", "target": "http://db:5432"},
			{"customerID": acme, "name": " ", "target": "db:5432"},
		} {
			r := env.Do(t, createOnPremMutation, map[string]any{"in": bad})
			if r.Code() != "VALIDATION_FAILED" || servertest.Str(r.Data, "createOnPremResource.userErrors.0.code") == "" ||
				servertest.Get(r.Data, "createOnPremResource.token") != nil {
				t.Fatalf("create %v: %s", bad, r.Raw)
			}
		}
		r = env.Do(t, onPremListQuery, map[string]any{"c": acme})
		if n := len(servertest.Get(r.Data, "onPremResources").([]any)); n != 1 {
			t.Fatalf("after refused creates: %d resources", n)
		}
		// Rotate: a new token, shown once.
		r = env.Do(t, `mutation($id: ID!) { rotateOnPremResourceToken(id: $id) { resource { id tokenPrefix } token userErrors { code } } }`,
			map[string]any{"id": id})
		mustOK(t, r)
		rotated := servertest.Str(r.Data, "rotateOnPremResourceToken.token")
		if !strings.HasPrefix(rotated, "pbagent_") || rotated == token {
			t.Fatalf("rotate: %s", r.Raw)
		}
		// Delete.
		r = env.Do(t, `mutation($id: ID!) { deleteOnPremResource(id: $id) { deletedID userErrors { code } } }`, map[string]any{"id": id})
		mustOK(t, r)
		r = env.Do(t, `mutation($id: ID!) { deleteOnPremResource(id: $id) { deletedID userErrors { code } } }`, map[string]any{"id": id})
		if r.Code() != "NOT_FOUND" {
			t.Fatalf("second delete: %s", r.Raw)
		}
		// Tokens are shown once: never in a later answer or a log line.
		for _, secret := range []string{token, rotated} {
			if strings.Contains(env.Logs.String(), secret) {
				t.Fatal("an agent token reached the logs")
			}
			if n := strings.Count(env.AllBodies(), secret); n != 1 {
				t.Fatalf("an agent token appears in %d answers, want 1", n)
			}
		}
	})
}
