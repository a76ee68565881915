package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plugboard/plugboard/ent/auditevent"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// TestRuntimeReadsAreAuditedBeforeTheAnswerEvenWhenKilled reads a credential
// from 16 clients at once, kills the server with SIGKILL in the middle of
// the reads, and reopens the database: every read answered 200, the last
// ones included, has its audit row.
func TestRuntimeReadsAreAuditedBeforeTheAnswerEvenWhenKilled(t *testing.T) {
	bin, pluginDir := buildServe(t)
	forEachDatabase(t, func(t *testing.T, dbURL string) {
		data := t.TempDir()
		args := serveArgs(data, pluginDir, dbURL)
		s, line := serve(t, bin, args...)
		addr := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(line)
		if addr == nil {
			t.Fatalf("no addr in %q", line)
		}
		base := "http://" + addr[1]
		waitReady(t, base+"/readyz")
		credential, token := seedRuntimeRead(t, base)

		answered := readUntilKilled(t, s, base+"/runtime/v1/credentials/"+credential, token, 300)
		<-s.done
		_ = s.cmd.Wait()

		st, err := store.Open(t.Context(), dbURL, data, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		rows := st.Client.AuditEvent.Query().
			Where(auditevent.Action("credential.runtime_read")).
			CountX(auth.SystemContext(t.Context()))
		t.Logf("%d reads answered 200 before SIGKILL, %d audit rows", answered, rows)
		if rows < answered {
			t.Errorf("%d reads answered 200 but only %d audit rows survived SIGKILL", answered, rows)
		}
	})
}

// readUntilKilled runs 16 readers of url and kills s once at least after
// reads were answered 200, while the readers go on; it returns the number
// of 200s.
func readUntilKilled(t *testing.T, s *served, url, token string, after int64) int {
	t.Helper()
	var ok atomic.Int64
	var once sync.Once
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	kill := func() { once.Do(func() { _ = s.cmd.Process.Kill() }) }
	deadline := time.Now().Add(2 * time.Minute)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				res, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				res.Body.Close()
				if res.StatusCode == http.StatusOK && ok.Add(1) >= after {
					kill()
				}
			}
		}()
	}
	wg.Wait()
	kill()
	if n := ok.Load(); n < after {
		t.Fatalf("only %d reads answered 200 in two minutes:\n%s", n, s.log())
	}
	return int(ok.Load())
}

// seedRuntimeRead creates, as the local admin of --dev, a customer's asana
// API key credential and a RUNTIME token, and returns the credential's
// global id and the token.
func seedRuntimeRead(t *testing.T, base string) (credential, token string) {
	t.Helper()
	var seed struct {
		CreateCustomer   struct{ Customer struct{ ID string } }
		CreateConnection struct{ Connection struct{ ID string } }
		CreateAPIToken   struct{ Token string }
	}
	graphql(t, base, `mutation {
	  createCustomer(input: { externalID: "killed", name: "Killed" }) { customer { id } }
	  createConnection(input: { typeKey: "asana.apiKey", stableKey: "asana", name: "Asana", scope: CUSTOMER }) { connection { id } }
	  createAPIToken(input: { role: RUNTIME, name: "killed" }) { token }
	}`, &seed)
	var saved struct {
		SaveCredential struct {
			Credential struct{ ID, Status string }
			UserErrors []struct{ Message string }
		}
	}
	graphql(t, base, fmt.Sprintf(`mutation { saveCredential(input: { connectionID: %q, customerID: %q,
	  values: [{ key: "apiKey", value: "2/1200000000000000/1200000000000001:0123456789abcdef0123456789abcdef" }] }) {
	  credential { id status } userErrors { message } } }`, seed.CreateConnection.Connection.ID, seed.CreateCustomer.Customer.ID), &saved)
	if c := saved.SaveCredential.Credential; c.Status != "ACTIVE" {
		t.Fatalf("saved credential %+v, errors %+v", c, saved.SaveCredential.UserErrors)
	}
	return saved.SaveCredential.Credential.ID, seed.CreateAPIToken.Token
}

// graphql posts query to base's /graphql and decodes its data into out,
// failing on any error.
func graphql(t *testing.T, base, query string, out any) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": query})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var answer struct {
		Data   json.RawMessage
		Errors []struct{ Message string }
	}
	if err := json.NewDecoder(res.Body).Decode(&answer); err != nil {
		t.Fatal(err)
	}
	if len(answer.Errors) > 0 {
		t.Fatalf("graphql errors: %+v", answer.Errors)
	}
	if err := json.Unmarshal(answer.Data, out); err != nil {
		t.Fatal(err)
	}
}

// forEachDatabase runs f in a subtest on SQLite (dbURL "") and on a fresh
// PostgreSQL database.
func forEachDatabase(t *testing.T, f func(t *testing.T, dbURL string)) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			dbURL := ""
			if db == "postgres" {
				dbURL = storetest.PostgresURL(t)
			}
			f(t, dbURL)
		})
	}
}

// serveArgs is `plugboard serve --dev` on data, pluginDir and dbURL (""
// for SQLite in data) on a free loopback port, then extra.
func serveArgs(data, pluginDir, dbURL string, extra ...string) []string {
	args := []string{"serve", "--dev", "--data-dir", data, "--plugin-dir", pluginDir, "--addr", "127.0.0.1:0"}
	if dbURL != "" {
		args = append(args, "--database", dbURL)
	}
	return append(args, extra...)
}
