package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/server/servertest"
)

// TestGraphQLLimits: oversized operations are refused with a code before
// anything runs, and the server keeps answering.
func TestGraphQLLimits(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	// connectionTypes → edges → node → plugin → connectionTypes → ... 20 levels.
	deep := "{ connectionTypes { edges { node { " + strings.Repeat("plugin { connectionTypes { ", 8) + "key" + strings.Repeat(" } }", 8) + " } } } }"
	var aliases strings.Builder
	aliases.WriteString("{ ")
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&aliases, "a%d: viewer { role } ", i)
	}
	aliases.WriteString("}")
	for _, c := range []struct{ name, query, code string }{
		{"too deep", deep, "QUERY_TOO_LARGE"},
		{"too many aliases", aliases.String(), "QUERY_TOO_LARGE"},
		{"page too large", `{ credentials(first: 100000) { edges { node { id } } } }`, "QUERY_TOO_LARGE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := env.Do(t, c.query, nil)
			if r.Code() != c.code || r.Data["connectionTypes"] != nil {
				t.Fatalf("code %q, want %q: %.400s", r.Code(), c.code, r.Raw)
			}
		})
	}
	// A body over the limit is refused, not read.
	big := append(append([]byte(`{"query":"{ viewer { role } }"`), bytes.Repeat([]byte(" "), 2<<20)...), '}')
	req, _ := http.NewRequest(http.MethodPost, env.URL+"/graphql", bytes.NewReader(big))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+env.AdminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "QUERY_TOO_LARGE") {
		t.Fatalf("an oversized body: %d %s", res.StatusCode, body)
	}
	// A batch (a JSON array) is not accepted.
	r := env.Post(t, env.AdminToken, []byte(`[{"query":"{ viewer { role } }"},{"query":"{ viewer { role } }"}]`))
	if len(r.Errors) == 0 || r.Status < 400 {
		t.Fatalf("a batch was accepted: %d %s", r.Status, r.Raw)
	}
	// Still serving.
	mustOK(t, env.Do(t, `{ viewer { role } }`, nil))
}

func TestIntrospectionCanBeTurnedOff(t *testing.T) {
	on := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	r := on.Do(t, `{ __schema { queryType { name } } }`, nil)
	mustOK(t, r)
	off := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}, NoIntrospection: true})
	r = off.Do(t, `{ __schema { queryType { name } } }`, nil)
	if len(r.Errors) == 0 || strings.Contains(r.Raw, `"Query"`) {
		t.Fatalf("introspection answered while off: %s", r.Raw)
	}
	mustOK(t, off.Do(t, `{ viewer { role } }`, nil))
}
