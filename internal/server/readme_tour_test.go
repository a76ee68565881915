package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/server/servertest"
)

// TestReadmeTour runs the README's five-minute tour as a new user would:
// every GraphQL operation of the tour, in order, against plugboard in local
// mode (no token, as GraphiQL after the run command), with each <…>
// placeholder replaced by the id an earlier answer gave. Every operation
// must answer without an error or a userError, and the tour must end at a
// deployed instance.
func TestReadmeTour(t *testing.T) {
	ops := readmeTourOperations(t)
	env := servertest.Start(t, servertest.Config{Dev: true})
	ids := map[string]string{}
	deployed := false
	for i, op := range ops {
		if strings.HasPrefix(op, "subscription") {
			continue // served over the websocket; subscription_test.go covers it
		}
		query, err := fillPlaceholders(op, ids)
		if err != nil {
			t.Fatalf("tour operation %d: %v\n%s", i+1, err, op)
		}
		res := env.DoAs(t, "", query, nil)
		if len(res.Errors) > 0 || res.Status != 200 {
			t.Fatalf("tour operation %d answered %d %s\n%s", i+1, res.Status, res.Raw, query)
		}
		if bad := userErrors(res.Data); len(bad) > 0 {
			t.Fatalf("tour operation %d answered userErrors %v\n%s", i+1, bad, query)
		}
		collectTourIDs(res.Data, ids)
		if servertest.Str(res.Data, "deployInstance.instance.deployedAt") != "" {
			deployed = true
		}
	}
	t.Logf("ran %d tour operations; ids: %v", len(ops), placeholderNames(ids))
	if !deployed {
		t.Fatal("the tour never reached a deployed instance")
	}
	for _, want := range []string{"<asana connection id>", "<asana credential id>", "<instance id>", "<slack credential id>"} {
		if ids[want] == "" {
			t.Errorf("the tour never produced %s", want)
		}
	}
}

// readmeTourOperations returns the GraphQL operations of the README's tour
// section, one a string, in the order they appear.
func readmeTourOperations(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	start := strings.Index(readme, "\n## A five-minute tour in GraphiQL")
	if start < 0 {
		t.Fatal("README.md has no tour section")
	}
	section := readme[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	var ops []string
	for _, m := range regexp.MustCompile("(?s)```graphql\n(.*?)```").FindAllStringSubmatch(section, -1) {
		ops = append(ops, splitOperations(t, m[1])...)
	}
	if len(ops) < 10 {
		t.Fatalf("found %d operations in the tour; the README's layout changed?", len(ops))
	}
	return ops
}

// splitOperations splits a block holding several top-level operations (as
// a person pastes them one at a time into GraphiQL) at its top-level braces.
func splitOperations(t *testing.T, block string) []string {
	t.Helper()
	var ops []string
	depth, begin := 0, -1
	inString := false
	for i, c := range block {
		switch {
		case c == '"' && (i == 0 || block[i-1] != '\\'):
			inString = !inString
		case inString:
		case c == '{':
			if depth == 0 && begin < 0 {
				begin = strings.LastIndex(block[:i], "\n") + 1
			}
			depth++
		case c == '}':
			depth--
			if depth == 0 {
				ops = append(ops, strings.TrimSpace(block[begin:i+1]))
				begin = -1
			}
		}
	}
	if depth != 0 {
		t.Fatalf("unbalanced braces in a tour block:\n%s", block)
	}
	return ops
}

var placeholder = regexp.MustCompile(`<[^<>"]+>`)

// fillPlaceholders replaces every <…> of op with an id from ids; a value a
// reader brings ("<your Slack app's client secret>") gets a stand-in.
func fillPlaceholders(op string, ids map[string]string) (string, error) {
	var missing []string
	out := placeholder.ReplaceAllStringFunc(op, func(p string) string {
		if strings.HasPrefix(p, "<your ") {
			return "tour-stand-in-value"
		}
		if v, ok := ids[p]; ok {
			return v
		}
		missing = append(missing, p)
		return p
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("no earlier answer gave %s (known: %v)", strings.Join(missing, ", "), placeholderNames(ids))
	}
	return out, nil
}

// collectTourIDs records the ids a tour answer gives, by the placeholder
// names the README uses.
func collectTourIDs(data map[string]any, ids map[string]string) {
	if id := servertest.Str(data, "createCustomer.customer.id"); id != "" {
		ids["<customer id>"] = id
	}
	if id := servertest.Str(data, "createIntegration.integration.id"); id != "" {
		ids["<integration id>"] = id
	}
	if id := servertest.Str(data, "createInstance.instance.id"); id != "" {
		ids["<instance id>"] = id
	}
	if c, ok := servertest.Get(data, "createConnection.connection").(map[string]any); ok {
		ids[fmt.Sprintf("<%v connection id>", c["stableKey"])] = fmt.Sprint(c["id"])
	}
	if c, ok := servertest.Get(data, "saveCredential.credential").(map[string]any); ok {
		if key := servertest.Str(c, "connection.stableKey"); key != "" {
			ids["<"+key+" credential id>"] = fmt.Sprint(c["id"])
		}
	}
	slots, _ := servertest.Get(data, "createIntegration.integration.connectionSlots").([]any)
	for _, s := range slots {
		if m, ok := s.(map[string]any); ok {
			if id := servertest.Str(m, "connection.id"); id != "" {
				ids[fmt.Sprintf("<%v slot connection id>", m["key"])] = id
			}
		}
	}
}

// userErrors returns every non-empty userErrors list in data.
func userErrors(data map[string]any) []any {
	var out []any
	for _, v := range data {
		if m, ok := v.(map[string]any); ok {
			if ue, ok := m["userErrors"].([]any); ok && len(ue) > 0 {
				out = append(out, ue...)
			}
		}
	}
	return out
}

func placeholderNames(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
