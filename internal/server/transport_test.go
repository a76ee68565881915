package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/server"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

// nested returns a where value with not nested n deep around a condition.
func nested(n int, inner map[string]any) map[string]any {
	v := inner
	for i := 0; i < n; i++ {
		v = map[string]any{"not": v}
	}
	return v
}

func wideOr(n int) map[string]any {
	or := make([]any, n)
	for i := range or {
		or[i] = map[string]any{"createdAtGT": "2020-01-01T00:00:00Z"}
	}
	return map[string]any{"or": or}
}

// TestMalformedFiltersAndCursors: a filter or cursor the server cannot use
// is the caller's mistake: VALIDATION_FAILED naming the argument, nothing
// logged at ERROR, on credentials and customers alike.
func TestMalformedFiltersAndCursors(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	for _, ext := range []string{"acme", "globex"} {
		mustOK(t, env.Do(t, `mutation($e: String!) { createCustomer(input: {externalID: $e, name: $e}) { customer { id } } }`, map[string]any{"e": ext}))
	}
	garbageJSON := base64.StdEncoding.EncodeToString([]byte(`{"id": "x", garbage`))
	cases := []struct {
		name, arg string
		vars      map[string]any
	}{
		{"enum as a lower-case string", "where", nil},
		{"time that is not one", "where", map[string]any{"w": map[string]any{"createdAtGT": "yesterday"}}},
		{"garbage cursor", "after", map[string]any{"c": "garbage"}},
		{"empty cursor", "after", map[string]any{"c": ""}},
		{"100 KiB cursor", "after", map[string]any{"c": strings.Repeat("A", 100<<10)}},
		{"base64 of garbage JSON", "after", map[string]any{"c": garbageJSON}},
		{"not nested 300 deep", "where", map[string]any{"w": nested(300, map[string]any{"createdAtGT": "2020-01-01T00:00:00Z"})}},
		{"2000-way or", "where", map[string]any{"w": wideOr(2000)}},
	}
	for _, list := range []struct{ field, input, badEnum string }{
		{"credentials", "CredentialWhereInput", `{"status": "active"}`},
		{"customers", "CustomerWhereInput", `{"createdAtIn": ["active"]}`},
	} {
		for _, c := range cases {
			t.Run(list.field+"/"+c.name, func(t *testing.T) {
				vars := c.vars
				if vars == nil {
					var w map[string]any
					_ = json.Unmarshal([]byte(list.badEnum), &w)
					vars = map[string]any{"w": w}
				}
				q := fmt.Sprintf(`query($w: %s, $c: Cursor) { %s(where: $w, after: $c) { totalCount } }`, list.input, list.field)
				r := env.Do(t, q, vars)
				if r.Code() != "VALIDATION_FAILED" {
					t.Fatalf("code %q, want VALIDATION_FAILED: %.300s", r.Code(), r.Raw)
				}
				ue, _ := r.Errors[0].Extensions["userErrors"].([]any)
				field := servertest.Get(map[string]any{"u": ue}, "u.0.field.0")
				if field != c.arg || !strings.Contains(r.Errors[0].Message, c.arg) {
					t.Fatalf("the error does not name %q: %.300s", c.arg, r.Raw)
				}
			})
		}
	}
	// A negative page size has its own code.
	for _, list := range []string{"credentials", "customers"} {
		if r := env.Do(t, fmt.Sprintf(`{ %s(first: -1) { totalCount } }`, list), nil); r.Code() != "INVALID_PAGINATION" {
			t.Fatalf("%s(first: -1): %s", list, r.Raw)
		}
	}
	// What is within the bounds still works: a real cursor, nested and
	// wide filters.
	first := env.Do(t, `{ customers(first: 1) { edges { cursor } pageInfo { endCursor } } }`, nil)
	mustOK(t, first)
	r := env.Do(t, `query($c: Cursor, $w: CustomerWhereInput) { customers(after: $c, where: $w) { edges { node { externalID } } } }`,
		map[string]any{"c": servertest.Str(first.Data, "customers.pageInfo.endCursor"), "w": nested(4, nested(2, wideOr(50)))})
	mustOK(t, r)
	if edges, _ := servertest.Get(r.Data, "customers.edges").([]any); len(edges) != 1 {
		t.Fatalf("after the first customer: %v", r.Raw)
	}
	if strings.Contains(env.Logs.String(), "level=ERROR") {
		t.Fatalf("a caller's mistake was logged at ERROR:\n%s", env.Logs.String())
	}
}

// TestComplexityCountsPageSizes: nested pages multiply; one large page of a
// few fields does not.
func TestComplexityCountsPageSizes(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	r := env.Do(t, `{ customers(first: 1000) { edges { node { credentials(first: 1000) { edges { node {
		versions(first: 1000) { totalCount } } } } } } } }`, nil)
	if r.Code() != "COMPLEXITY_LIMIT_EXCEEDED" || r.Data["customers"] != nil {
		t.Fatalf("code %q, want COMPLEXITY_LIMIT_EXCEEDED: %.300s", r.Code(), r.Raw)
	}
	// Page sizes from variables count too.
	r = env.Do(t, `query($n: Int) { customers(first: $n) { edges { node { credentials(first: $n) { totalCount } } } } }`,
		map[string]any{"n": 1000})
	if r.Code() != "COMPLEXITY_LIMIT_EXCEEDED" {
		t.Fatalf("with variables: code %q: %.300s", r.Code(), r.Raw)
	}
	mustOK(t, env.Do(t, `{ credentials(first: 1000) { totalCount edges { node { id status version customer { id } connection { stableKey } } } } }`, nil))
	mustOK(t, env.Do(t, `{ customers(first: 10) { edges { node { credentials(first: 10) { edges { node { versions(first: 10) { totalCount } } } } } } } }`, nil))
}

// closeCode dials the websocket, sends connection_init with token and
// returns the code the server closes it with.
func closeCode(t *testing.T, env *servertest.Env, token string) websocket.StatusCode {
	t.Helper()
	conn := dialWS(t, env, token)
	for {
		_, err := receive(conn)
		if err == nil {
			continue // connection_error, before the close
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("the socket ended without a close frame: %v", err)
		}
		return ce.Code
	}
}

// TestWebsocketRefusalCloseCodes: a refused token closes with 4401, a
// token whose role may not subscribe with 4403, so clients stop.
func TestWebsocketRefusalCloseCodes(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	if c := closeCode(t, env, "pb_admin_wrong"); c != 4401 {
		t.Fatalf("a wrong token closed with %d, want 4401", c)
	}
	ctx := context.Background()
	org, err := server.EnsureOrganization(ctx, env.App.Store.Client, server.DefaultOrgSlug)
	if err != nil {
		t.Fatal(err)
	}
	rt, _, err := env.App.Tokens.Create(ctx, org.ID, auth.RoleRuntime, "runtime")
	if err != nil {
		t.Fatal(err)
	}
	if c := closeCode(t, env, rt); c != 4403 {
		t.Fatalf("a runtime token closed with %d, want 4403", c)
	}
	// An admin token is still acknowledged.
	conn := dialWS(t, env, env.AdminToken)
	if m, err := receive(conn); err != nil || m.Type != "connection_ack" {
		t.Fatalf("expected connection_ack, got %+v %v", m, err)
	}
}

// rawRequest sends a request to /graphql with the admin token and returns
// the status and the decoded body.
func rawRequest(t *testing.T, env *servertest.Env, client *http.Client, method, query, ctype string, body io.Reader) (int, *servertest.Response) {
	t.Helper()
	req, err := http.NewRequest(method, env.URL+"/graphql"+query, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Authorization", "Bearer "+env.AdminToken)
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s /graphql%s: %v", method, query, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := &servertest.Response{Status: res.StatusCode, Raw: string(raw)}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("%s: not JSON (%d): %s", method, res.StatusCode, raw)
	}
	return res.StatusCode, out
}

// TestSubscriptionOverHTTPRefused: a subscription sent by POST or GET is
// refused at once, not left waiting for the request timeout.
func TestSubscriptionOverHTTPRefused(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	// Far under the 45 s request timeout the request used to wait for.
	client := &http.Client{Timeout: 5 * time.Second}
	const sub = `subscription { credentialStatusChanged { to } }`
	body, _ := json.Marshal(map[string]any{"query": sub})
	status, r := rawRequest(t, env, client, http.MethodPost, "", "application/json", bytes.NewReader(body))
	if status != http.StatusBadRequest || r.Code() != server.CodeBadRequest || !strings.Contains(r.Errors[0].Message, "websocket") {
		t.Fatalf("POST subscription: %d %s", status, r.Raw)
	}
	status, r = rawRequest(t, env, client, http.MethodGet, "?query="+url.QueryEscape(sub), "", nil)
	if status != http.StatusBadRequest || r.Code() != server.CodeBadRequest {
		t.Fatalf("GET subscription: %d %s", status, r.Raw)
	}
}

// chunked hides a reader's length, so the client sends it chunked.
type chunked struct{ io.Reader }

// TestTransportRefusalsCarryCodes: every request refused before its
// operation runs gets an extensions.code and a fitting status.
func TestTransportRefusalsCarryCodes(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	client := &http.Client{Timeout: 10 * time.Second}
	create := `mutation { createCustomer(input: {externalID: "trailing", name: "T"}) { customer { id } } }`
	createBody, _ := json.Marshal(map[string]any{"query": create})
	big := append(append([]byte(`{"query":"{ viewer { role } }"`), bytes.Repeat([]byte(" "), 1<<20)...), '}')
	for _, c := range []struct {
		name, method, query, ctype string
		body                       []byte
		chunked                    bool
		status                     int
		code                       string
	}{
		{"text/plain body", "POST", "", "text/plain", []byte(`{"query":"{ viewer { role } }"}`), false, 415, server.CodeBadRequest},
		{"no content type", "POST", "", "", []byte(`{"query":"{ viewer { role } }"}`), false, 415, server.CodeBadRequest},
		{"PUT", "PUT", "", "application/json", []byte(`{"query":"{ viewer { role } }"}`), false, 405, server.CodeBadRequest},
		{"DELETE", "DELETE", "", "", nil, false, 405, server.CodeBadRequest},
		{"mutation over GET", "GET", "?query=" + url.QueryEscape(create), "", nil, false, 405, server.CodeBadRequest},
		{"GET variables that do not decode", "GET", "?query=%7Bviewer%7Brole%7D%7D&variables=%7Bx", "", nil, false, 400, server.CodeBadRequest},
		{"GET variables not an object", "GET", "?query=%7Bviewer%7Brole%7D%7D&variables=5", "", nil, false, 400, server.CodeBadRequest},
		{"POST variables a string", "POST", "", "application/json", []byte(`{"query":"{ viewer { role } }","variables":"x"}`), false, 400, server.CodeBadRequest},
		{"POST variables a list", "POST", "", "application/json", []byte(`{"query":"{ viewer { role } }","variables":[1,2]}`), false, 400, server.CodeBadRequest},
		{"trailing garbage", "POST", "", "application/json", append(createBody, []byte(` {"query":"x"} garbage`)...), false, 400, server.CodeBadRequest},
		{"a batch", "POST", "", "application/json", []byte(`[{"query":"{ viewer { role } }"}]`), false, 400, server.CodeBadRequest},
		{"chunked body over 1 MiB", "POST", "", "application/json", big, true, 413, "QUERY_TOO_LARGE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader
			if c.body != nil {
				body = bytes.NewReader(c.body)
				if c.chunked {
					body = chunked{body}
				}
			}
			status, r := rawRequest(t, env, client, c.method, c.query, c.ctype, body)
			if status != c.status || r.Code() != c.code {
				t.Fatalf("%d %q, want %d %q: %.300s", status, r.Code(), c.status, c.code, r.Raw)
			}
		})
	}
	// Neither the GET mutation nor the body with trailing garbage ran.
	r := env.Do(t, `{ customers { totalCount } }`, nil)
	if n := servertest.Get(r.Data, "customers.totalCount"); n != float64(0) {
		t.Fatalf("a refused mutation ran: %s", r.Raw)
	}
	// A chunked body within the limit is served.
	status, r := rawRequest(t, env, client, "POST", "", "application/json", chunked{bytes.NewReader([]byte(`{"query":"{ viewer { role } }"}`))})
	if status != http.StatusOK || len(r.Errors) != 0 {
		t.Fatalf("a small chunked body: %d %s", status, r.Raw)
	}
}
