package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/globalid"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

// scrape reads /metrics into a map of sample (name and labels, the labels
// in name order as canonical writes them) to value, checking that every
// sample's metric has a TYPE line before it.
func scrape(t *testing.T, env *servertest.Env) map[string]float64 {
	t.Helper()
	return parseMetrics(t, scrapeBody(t, env))
}

// scrapeBody is the text of one GET /metrics.
func scrapeBody(t *testing.T, env *servertest.Env) string {
	t.Helper()
	res, err := http.Get(env.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func parseMetrics(t *testing.T, body string) map[string]float64 {
	t.Helper()
	typed := map[string]bool{}
	out := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[1] == "TYPE" {
			typed[f[2]] = true
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("malformed sample %q", line)
		}
		sample := line[:i]
		name, _, _ := strings.Cut(sample, "{")
		base := name
		for _, suffix := range []string{"_sum", "_count", "_bucket"} {
			base = strings.TrimSuffix(base, suffix)
		}
		if !typed[name] && !typed[base] {
			t.Errorf("%s has no TYPE line", name)
		}
		out[canonical(t, sample)] = v
	}
	return out
}

// canonical writes a sample's name and labels with the labels sorted by
// name, so that a lookup does not depend on the order of the exposition.
func canonical(t *testing.T, sample string) string {
	t.Helper()
	name, rest, ok := strings.Cut(sample, "{")
	if !ok {
		return sample
	}
	rest, ok = strings.CutSuffix(rest, "}")
	if !ok {
		t.Fatalf("malformed labels in %q", sample)
	}
	var pairs []string
	for rest != "" {
		label, value, ok := strings.Cut(rest, "=")
		if !ok || value == "" || value[0] != '"' {
			t.Fatalf("malformed labels in %q", sample)
		}
		end := closingQuote(value)
		if end < 0 {
			t.Fatalf("malformed labels in %q", sample)
		}
		pairs = append(pairs, label+"="+value[:end+1])
		rest = strings.TrimPrefix(value[end+1:], ",")
	}
	sort.Strings(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// closingQuote is the index of the quote that ends the quoted string at the
// start of s, past escaped characters; -1 when there is none.
func closingQuote(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// /metrics counts requests by path and code and shows each plugin's status.
func TestMetrics(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	mustOK(t, env.Do(t, `{ viewer { role } }`, nil))
	got := scrape(t, env)
	if _, ok := got[canonical(t, `plugboard_http_requests_total{path="/graphql",code="200"}`)]; !ok {
		t.Errorf("metrics lack %s:\n%v", `plugboard_http_requests_total{path="/graphql",code="200"}`, got)
	}
	if v, ok := got[canonical(t, `plugboard_plugin_up{plugin="asana",status="LOADED"}`)]; !ok || v != 1 {
		t.Errorf("metrics lack %s 1:\n%v", `plugboard_plugin_up{plugin="asana",status="LOADED"}`, got)
	}
}

// /metrics shows the Go runtime and the process, in the standard Prometheus
// names, so a goroutine or file descriptor leak shows up.
func TestMetricsRuntimeAndProcess(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	before := scrape(t, env)
	for _, name := range []string{
		"go_goroutines", "go_threads", "go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes",
		"go_memstats_alloc_bytes_total", "go_memstats_sys_bytes", "go_gc_duration_seconds_count",
		"process_open_fds", "process_max_fds", "process_resident_memory_bytes", "process_virtual_memory_bytes",
		"process_start_time_seconds", "process_cpu_seconds_total",
	} {
		if _, ok := before[name]; !ok {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if before["go_memstats_heap_alloc_bytes"] <= 0 || before["process_resident_memory_bytes"] <= 0 || before["process_cpu_seconds_total"] <= 0 {
		t.Errorf("heap %g, resident %g, cpu %g; want all above 0", before["go_memstats_heap_alloc_bytes"],
			before["process_resident_memory_bytes"], before["process_cpu_seconds_total"])
	}
	if start, now := before["process_start_time_seconds"], float64(time.Now().Unix()); start > now+1 || start < now-24*3600 {
		t.Errorf("process_start_time_seconds = %g; now is %g", start, now)
	}

	// Leak 200 goroutines and 50 files: both counts grow by about that
	// (less what the server ended meanwhile).
	release := make(chan struct{})
	for range 200 {
		go func() { <-release }()
	}
	defer close(release)
	for range 50 {
		f, err := os.Open(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	after := scrape(t, env)
	if got := after["go_goroutines"] - before["go_goroutines"]; got < 150 {
		t.Errorf("go_goroutines grew by %g with 200 more goroutines", got)
	}
	if got := after["process_open_fds"] - before["process_open_fds"]; got < 40 {
		t.Errorf("process_open_fds grew by %g with 50 more open files", got)
	}
}

// TestMetricsLatencyHistograms drives GraphQL mutations and a query, saves
// that call the plugins (one with a live test), a runtime read that refreshes an expired token and
// one that finds nothing; /metrics then shows each in its histogram, with
// the expected labels, and no secret anywhere.
func TestMetricsLatencyHistograms(t *testing.T) {
	const secret = "metrics-CANARY-secret-51c0"
	const accessToken = "metrics-CANARY-access-a7d2"
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if r.PostForm.Get("client_secret") != secret {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		_, _ = w.Write([]byte(`{"access_token":"` + accessToken + `","token_type":"Bearer","expires_in":3599}`))
	}))
	t.Cleanup(idp.Close)
	env := servertest.Start(t, servertest.Config{Plugins: []string{"msgraph", "asana"}})
	credID := saveClientCredentials(t, env, idp.URL, secret)
	asana, _ := fakeAsana(t)
	connID, custID := createAsanaConnection(t, env)
	mustOK(t, env.Do(t, saveMutation, map[string]any{"in": map[string]any{
		"connectionID": connID, "customerID": custID, "test": true,
		"values": []any{
			map[string]any{"key": "apiKey", "value": canary},
			map[string]any{"key": "baseUrl", "value": asana.URL},
		},
	}}))
	mustOK(t, env.Do(t, `query Viewer { viewer { role } }`, nil))

	// Expire the token: the next runtime read refreshes it.
	id, _ := globalid.Decode(credID)
	past := time.Now().Add(-time.Minute)
	if err := env.App.Store.Client.Credential.UpdateOneID(id).SetTokenExpiresAt(past).SetNextRefreshAt(past).Exec(auth.SystemContext(context.Background())); err != nil {
		t.Fatal(err)
	}
	rt := runtimeToken(t, env)
	if code, rr := readRuntime(t, env, rt, credID); code != http.StatusOK || rr.Token == nil {
		t.Fatalf("runtime read %d: %+v", code, rr)
	}
	if code, _ := readRuntime(t, env, rt, "nothing-here"); code != http.StatusNotFound {
		t.Fatalf("runtime read of an unknown id: %d", code)
	}

	body := scrapeBody(t, env)
	got := parseMetrics(t, body)
	for _, series := range []string{
		`plugboard_graphql_operation_duration_seconds_count{operation="CreateGraph",type="mutation"}`,
		`plugboard_graphql_operation_duration_seconds_count{operation="anonymous",type="mutation"}`,
		`plugboard_graphql_operation_duration_seconds_count{operation="Viewer",type="query"}`,
		`plugboard_plugin_call_duration_seconds_count{plugin="msgraph",method="describe",result="ok"}`,
		`plugboard_plugin_call_duration_seconds_count{plugin="msgraph",method="validate",result="ok"}`,
		`plugboard_plugin_call_duration_seconds_count{plugin="asana",method="test",result="ok"}`,
		`plugboard_token_refresh_duration_seconds_count{result="ok"}`,
		`plugboard_runtime_read_duration_seconds_count{code="200"}`,
		`plugboard_runtime_read_duration_seconds_count{code="404"}`,
	} {
		if got[canonical(t, series)] <= 0 {
			t.Errorf("%s = %g; want observations", series, got[canonical(t, series)])
		}
	}
	for _, leak := range []string{secret, accessToken, canary, "CANARY", rt} {
		if strings.Contains(body, leak) {
			t.Errorf("/metrics shows a secret (%.8s…)", leak)
		}
	}
}

// saveClientCredentials creates an msgraph client-credentials connection in
// a named mutation and saves its credential in an anonymous one; it returns
// the credential's ID.
func saveClientCredentials(t *testing.T, env *servertest.Env, authority, secret string) string {
	t.Helper()
	r := env.Do(t, `mutation CreateGraph { createConnection(input: {typeKey: "msgraph.clientCredentials", stableKey: "graph", name: "Graph", scope: ORGANIZATION_GLOBAL}) { connection { id } } }`, nil)
	mustOK(t, r)
	val := func(k, v string) map[string]any { return map[string]any{"key": k, "value": v} }
	r = env.Do(t, saveMutation, map[string]any{"in": map[string]any{
		"connectionID": servertest.Str(r.Data, "createConnection.connection.id"),
		"values": []any{
			val("tenant", "contoso.onmicrosoft.com"), val("clientId", "11111111-2222-3333-4444-555555555555"),
			val("clientSecret", secret), val("authorityHost", authority),
		},
	}})
	mustOK(t, r)
	return servertest.Str(r.Data, "saveCredential.credential.id")
}

// TestMetricsOperationNamesAreBounded: clients choose operation names, so
// the GraphQL histogram keeps at most a hundred of them and counts the rest,
// and every name an unauthenticated request sends, as "other".
func TestMetricsOperationNamesAreBounded(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	_ = env.DoAs(t, "", `query Stranger { viewer { role } }`, nil)
	for i := range 120 {
		mustOK(t, env.Do(t, fmt.Sprintf(`query Op%d { viewer { role } }`, i), nil))
	}
	names := map[string]bool{}
	for series := range parseMetrics(t, scrapeBody(t, env)) {
		if rest, ok := strings.CutPrefix(series, `plugboard_graphql_operation_duration_seconds_count{operation="`); ok {
			name, _, _ := strings.Cut(rest, `"`)
			names[name] = true
		}
	}
	if len(names) > 101 || !names["other"] || !names["Op0"] || names["Stranger"] || names["Op119"] {
		t.Errorf("operation label values (%d): %v; want Op0 … Op99 and other", len(names), names)
	}
}
