package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/events"
	"github.com/plugboard/plugboard/internal/server/servertest"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// The configWizard answer cache (wizardcache.go, wizardfront.go) must
// never show an answer that a change has made stale, nor one viewer's
// answer to another. Each test first shows that the cache serves (a repeat
// runs no SQL statement), so that what follows tests the cache.

// wizardCacheEnv is plugboard with the wizard's plugins, counting its SQL
// statements, and the wizard's data.
type wizardCacheEnv struct {
	*servertest.Env
	stmts *atomic.Int64
	seed  *wizardSeed
}

// eachDBWizard runs fn on SQLite and on PostgreSQL, each with a fresh
// seeded plugboard.
func eachDBWizard(t *testing.T, fn func(t *testing.T, w *wizardCacheEnv)) {
	run := func(t *testing.T, databaseURL string) {
		stmts := &atomic.Int64{}
		env := servertest.Start(t, servertest.Config{
			DatabaseURL: databaseURL, Plugins: []string{"asana", "slack", "postgres"},
			StoreOptions: []store.Option{store.WithStatementCounter(stmts)},
		})
		fn(t, &wizardCacheEnv{Env: env, stmts: stmts, seed: seedWizard(t, env.App, 5)})
	}
	t.Run("sqlite", func(t *testing.T) { run(t, "") })
	t.Run("postgres", func(t *testing.T) { run(t, storetest.PostgresURL(t)) })
}

// wizard queries instance's wizard with token and returns the answer and
// the SQL statements the request ran.
func (w *wizardCacheEnv) wizard(t *testing.T, token string, instanceID int) (wizardResp, string, int64) {
	t.Helper()
	before := w.stmts.Load()
	r, raw := queryWizard(t, nil, w.URL+"/graphql", token, instanceID)
	return r, raw, w.stmts.Load() - before
}

// cached queries the wizard three more times and fails t unless one of
// the repeats ran no SQL statement (a token check that refreshes runs one)
// and each answered the same bytes as want.
func (w *wizardCacheEnv) cached(t *testing.T, token string, instanceID int, want string) {
	t.Helper()
	least := int64(1 << 30)
	for range 3 {
		_, raw, n := w.wizard(t, token, instanceID)
		if raw != want {
			t.Fatalf("a repeated configWizard answered differently:\n%s\nwant\n%s", raw, want)
		}
		least = min(least, n)
	}
	if least != 0 {
		t.Fatalf("a repeated configWizard ran %d SQL statements: the answer is not cached", least)
	}
}

// notCached fails t unless every one of three repeats of body ran SQL.
func (w *wizardCacheEnv) notCached(t *testing.T, token string, body []byte) {
	t.Helper()
	for range 3 {
		before := w.stmts.Load()
		w.Post(t, token, body)
		if w.stmts.Load() == before {
			t.Fatalf("a repeat of %.80s ran no SQL statement: it was answered from the cache", body)
		}
	}
}

// elem returns the element of slot key of a wizard answer.
func elem(t *testing.T, r wizardResp, raw, key string) wizardElem {
	t.Helper()
	for _, e := range wizardElems(t, r, raw) {
		if e.SlotKey == key {
			return e
		}
	}
	t.Fatalf("no slot %s: %s", key, raw)
	return wizardElem{}
}

func status(e wizardElem) string {
	if e.Status == nil {
		return "null"
	}
	return *e.Status
}

const saveWarehouse = `mutation($in: SaveCredentialInput!) { saveCredential(input: $in) {
	credential { id status } userErrors { field code message } } }`

// A save through the API and a write inside plugboard show in the very
// next answer.
func TestWizardCacheFollowsWrites(t *testing.T) {
	eachDBWizard(t, func(t *testing.T, w *wizardCacheEnv) {
		s := w.seed
		r, raw, _ := w.wizard(t, w.AdminToken, s.inst1.ID)
		if v := credValue(elem(t, r, raw, "warehouse"), "host"); v != "db.example.com" {
			t.Fatalf("warehouse host %q: %.300s", v, raw)
		}
		w.cached(t, w.AdminToken, s.inst1.ID, raw)

		// Another request saves the organization's PostgreSQL host.
		mustOK(t, w.Do(t, saveWarehouse, map[string]any{"in": map[string]any{
			"connectionID": gid(s.pgGlobal.ID),
			"values": []map[string]any{
				{"key": "host", "value": "db2.example.com"}, {"key": "database", "value": "app"},
				{"key": "user", "value": "svc"}, {"key": "password", "value": wizPgPassword},
			},
		}}))
		r, raw, _ = w.wizard(t, w.AdminToken, s.inst1.ID)
		if v := credValue(elem(t, r, raw, "warehouse"), "host"); v != "db2.example.com" {
			t.Fatalf("after the save, the warehouse host is %q: %.300s", v, raw)
		}
		w.cached(t, w.AdminToken, s.inst1.ID, raw)

		// plugboard itself (across organizations) changes a status.
		sys := auth.SystemContext(context.Background())
		if err := w.App.Store.Client.Credential.UpdateOneID(s.slackInst.ID).SetStatus(credential.StatusERROR).Exec(sys); err != nil {
			t.Fatal(err)
		}
		r, raw, _ = w.wizard(t, w.AdminToken, s.inst1.ID)
		if st := status(elem(t, r, raw, "slack")); st != "ERROR" {
			t.Fatalf("after the status write, slack is %s: %.300s", st, raw)
		}
	})
}

func credValue(e wizardElem, key string) string {
	if e.Credential == nil {
		return ""
	}
	for _, v := range e.Credential.Values {
		if v.Key == key && v.Value != nil {
			return *v.Value
		}
	}
	return ""
}

// A status change made by another replica (a write this process's hooks
// never see) shows as soon as its notification arrives: on PostgreSQL from
// a second event bus on the same database, as another replica's; on
// SQLite injected into this process's bus.
func TestWizardCacheOtherReplicaStatus(t *testing.T) {
	eachDBWizard(t, func(t *testing.T, w *wizardCacheEnv) {
		s := w.seed
		r, raw, _ := w.wizard(t, w.AdminToken, s.inst1.ID)
		if st := status(elem(t, r, raw, "slack")); st != "ACTIVE" {
			t.Fatalf("slack is %s: %.300s", st, raw)
		}
		w.cached(t, w.AdminToken, s.inst1.ID, raw)

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		heard := w.App.Events.Subscribe(ctx, s.org.ID, s.slackInst.ID)
		// The other replica's ent client: the same database, none of this
		// process's hooks.
		other := ent.NewClient(ent.Driver(entsql.OpenDB(w.App.Store.Dialect, w.App.Store.DB)))
		if err := other.Credential.UpdateOneID(s.slackInst.ID).SetStatus(credential.StatusERROR).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		bus := w.App.Events
		if w.App.Options.DatabaseURL != "" {
			bus = events.NewBus(nil)
			if err := bus.ConnectPostgres(ctx, w.App.Options.DatabaseURL); err != nil {
				t.Fatal(err)
			}
		}
		bus.Publish(ctx, events.StatusChange{OrganizationID: s.org.ID, CredentialID: s.slackInst.ID,
			ConnectionID: s.slackInt.ID, From: "ACTIVE", To: "ERROR", At: time.Now()})
		select {
		case <-heard:
		case <-ctx.Done():
			t.Fatal("the status change never arrived")
		}
		r, raw, _ = w.wizard(t, w.AdminToken, s.inst1.ID)
		if st := status(elem(t, r, raw, "slack")); st != "ERROR" {
			t.Fatalf("after the other replica's status change, slack is %s: %.300s", st, raw)
		}
	})
}

// Cached answers are kept per viewer: two users of one customer, another
// customer and an admin each get their own, and another customer's
// instance stays not found.
func TestWizardCacheViewers(t *testing.T) {
	eachDBWizard(t, func(t *testing.T, w *wizardCacheEnv) {
		s := w.seed
		key := newEmbedKey(t, "web-1")
		registerKey(t, w.Env, w.AdminToken, key)
		u1 := key.token(t, "default", "a1", "u1")
		u2 := key.token(t, "default", "a1", "u2")
		v2 := key.token(t, "default", "a2", "v2")
		// The first token of a user records the user (a write, which
		// drops cached answers): before anything is cached.
		for _, tok := range []string{u1, u2, v2} {
			mustOK(t, w.DoAs(t, tok, `{ viewer { role } }`, nil))
		}

		_, adminRaw, _ := w.wizard(t, w.AdminToken, s.inst1.ID)
		w.cached(t, w.AdminToken, s.inst1.ID, adminRaw)
		r, raw1, _ := w.wizard(t, u1, s.inst1.ID)
		if st := status(elem(t, r, raw1, "myAsana")); st != "ACTIVE" {
			t.Fatalf("u1's own Asana is %s: %.300s", st, raw1)
		}
		w.cached(t, u1, s.inst1.ID, raw1)
		for _, hidden := range []string{"db.example.com", wizSlackClient, wizUserBaseURL} {
			if strings.Contains(raw1, hidden) {
				t.Errorf("u1 is shown %q (the admin's cached answer?)", hidden)
			}
		}
		r, raw2, _ := w.wizard(t, u2, s.inst1.ID)
		if st := status(elem(t, r, raw2, "myAsana")); st != "null" {
			t.Fatalf("u2 is shown u1's Asana (%s): %.300s", st, raw2)
		}
		r, raw, _ := w.wizard(t, v2, s.inst1.ID)
		if r.Data.ConfigWizard != nil || len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "NOT_FOUND" {
			t.Fatalf("customer A2 reads A1's instance: %s", raw)
		}
		// And A2's own instance, after A1's answers are cached.
		inst3, err := w.App.Store.Client.Instance.Create().SetOrganizationID(s.org.ID).SetIntegrationID(s.inst1.IntegrationID).
			SetCustomerID(s.a2.ID).SetName("A2 wizard").Save(auth.SystemContext(context.Background()))
		if err != nil {
			t.Fatal(err)
		}
		_, raw, _ = w.wizard(t, u1, inst3.ID)
		if !strings.Contains(raw, "NOT_FOUND") {
			t.Fatalf("customer A1 reads A2's instance: %s", raw)
		}
		r, raw, _ = w.wizard(t, v2, inst3.ID)
		if e := elem(t, r, raw, "asana"); len(e.Existing) != 1 || e.Existing[0].ID != gid(s.a2Other.ID) {
			t.Fatalf("A2's reusable Asana credential: %s", raw)
		}
	})
}

// A revoked API token or signing key is refused even though its viewer's
// answer is cached.
func TestWizardCacheRevokedToken(t *testing.T) {
	eachDBWizard(t, func(t *testing.T, w *wizardCacheEnv) {
		s := w.seed
		tok, row, err := w.App.Tokens.Create(context.Background(), s.org.ID, auth.RoleOrgAdmin, "second")
		if err != nil {
			t.Fatal(err)
		}
		_, raw, _ := w.wizard(t, tok, s.inst1.ID)
		w.cached(t, tok, s.inst1.ID, raw)
		mustOK(t, w.Do(t, `mutation($id: ID!) { revokeAPIToken(id: $id) { apiToken { id } } }`, map[string]any{"id": gid(row.ID)}))
		if r := w.Post(t, tok, gqlBody(wizardQueryText, map[string]any{"id": gid(s.inst1.ID)})); r.Status != http.StatusUnauthorized || r.Data != nil {
			t.Fatalf("a revoked API token got the cached wizard: %d %.200s", r.Status, r.Raw)
		}

		key := newEmbedKey(t, "web-1")
		keyID := registerKey(t, w.Env, w.AdminToken, key)
		u1 := key.token(t, "default", "a1", "u1")
		_, raw, _ = w.wizard(t, u1, s.inst1.ID)
		w.cached(t, u1, s.inst1.ID, raw)
		mustOK(t, w.Do(t, `mutation($id: ID!) { revokeSigningKey(id: $id) { signingKey { id } } }`, map[string]any{"id": keyID}))
		if r := w.Post(t, u1, gqlBody(wizardQueryText, map[string]any{"id": gid(s.inst1.ID)})); r.Status != http.StatusUnauthorized || r.Data != nil {
			t.Fatalf("a token of a revoked signing key got the cached wizard: %d %.200s", r.Status, r.Raw)
		}
	})
}

// Answers with errors, and answers selecting audit events (written
// without a generation bump), are computed afresh every time.
func TestWizardCacheNotCached(t *testing.T) {
	eachDBWizard(t, func(t *testing.T, w *wizardCacheEnv) {
		s := w.seed
		missing := gqlBody(wizardQueryText, map[string]any{"id": gid(s.inst1.ID + 1000)})
		if r := w.Post(t, w.AdminToken, missing); r.Code() != "NOT_FOUND" {
			t.Fatalf("a missing instance: %s", r.Raw)
		}
		w.notCached(t, w.AdminToken, missing)

		audited := gqlBody(`query($id: ID!) { configWizard(instanceID: $id) { pages { elements {
			slotKey credential { id auditEvents(first: 5) { totalCount } } } } } }`, map[string]any{"id": gid(s.inst1.ID)})
		r := w.Post(t, w.AdminToken, audited)
		mustOK(t, r)
		var got struct{}
		if err := json.Unmarshal([]byte(r.Raw), &got); err != nil {
			t.Fatal(err)
		}
		w.notCached(t, w.AdminToken, audited)
	})
}

// Concurrent first requests of one answer compute it once: the others wait
// for it (or, arriving later, find it cached).
func TestWizardCacheConcurrentMisses(t *testing.T) {
	eachDBWizard(t, func(t *testing.T, w *wizardCacheEnv) {
		s := w.seed
		// One miss on instance 2 tells what one computation costs (the
		// token is checked, and then remembered, here).
		_, _, one := w.wizard(t, w.AdminToken, s.inst2.ID)
		before := w.stmts.Load()
		var wg sync.WaitGroup
		bodies := make([]string, 20)
		for i := range bodies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, bodies[i], _ = w.wizard(t, w.AdminToken, s.inst1.ID)
			}()
		}
		wg.Wait()
		ran := w.stmts.Load() - before
		for _, b := range bodies[1:] {
			if b != bodies[0] {
				t.Fatalf("concurrent answers differ:\n%s\n%s", b, bodies[0])
			}
		}
		// A token check that refreshes meanwhile may add one statement.
		if ran > one+1 {
			t.Fatalf("20 concurrent first requests ran %d SQL statements; one runs %d", ran, one)
		}
	})
}

// credentialsPage is the credentials page of BenchmarkCredentialsPage.
func credentialsPageBody(first int, after any) []byte {
	return gqlBody(credentialsPageQuery, map[string]any{"first": first, "after": after})
}

// page posts body with token and returns the answer and the SQL
// statements the request ran.
func (w *wizardCacheEnv) page(t *testing.T, token string, body []byte) (*servertest.Response, int64) {
	t.Helper()
	before := w.stmts.Load()
	r := w.Post(t, token, body)
	n := w.stmts.Load() - before
	mustOK(t, r)
	return r, n
}

// cachedPage posts body three more times and fails t unless one of the
// repeats ran no SQL statement and each answered the same bytes as want.
func (w *wizardCacheEnv) cachedPage(t *testing.T, token string, body []byte, want string) {
	t.Helper()
	least := int64(1 << 30)
	for range 3 {
		r, n := w.page(t, token, body)
		if r.Raw != want {
			t.Fatalf("a repeated page answered differently:\n%s\nwant\n%s", r.Raw, want)
		}
		least = min(least, n)
	}
	if least != 0 {
		t.Fatalf("a repeated page ran %d SQL statements: the answer is not cached", least)
	}
}

// A repeated credentials page is answered from the cache (no SQL
// statement), and a credential saved by another request shows in the very
// next answer.
func TestAnswerCacheCredentialsPageFollowsSaves(t *testing.T) {
	eachDBWizard(t, func(t *testing.T, w *wizardCacheEnv) {
		s := w.seed
		body := credentialsPageBody(100, nil)
		r, _ := w.page(t, w.AdminToken, body)
		if strings.Contains(r.Raw, `"asana-customer"`) {
			t.Fatalf("a credential of asana-customer before any was saved: %.300s", r.Raw)
		}
		w.cachedPage(t, w.AdminToken, body, r.Raw)

		saved := w.Do(t, saveWarehouse, map[string]any{"in": map[string]any{
			"connectionID": gid(s.asanaCust.ID), "customerID": gid(s.a2.ID),
			"values": []map[string]any{{"key": "apiKey", "value": wizAsanaToken2}},
		}})
		mustOK(t, saved)
		id, _ := saved.Data["saveCredential"].(map[string]any)["credential"].(map[string]any)["id"].(string)
		if id == "" {
			t.Fatalf("saveCredential: %s", saved.Raw)
		}
		r, _ = w.page(t, w.AdminToken, body)
		if !strings.Contains(r.Raw, `"`+id+`"`) || !strings.Contains(r.Raw, `"asana-customer"`) {
			t.Fatalf("after the save, the page does not list credential %s: %.500s", id, r.Raw)
		}
		w.cachedPage(t, w.AdminToken, body, r.Raw)
	})
}

// A customer's user is never shown another customer's credentials, even
// once the admin's and the other customer's pages are cached.
func TestAnswerCacheCredentialsPageViewers(t *testing.T) {
	eachDBWizard(t, func(t *testing.T, w *wizardCacheEnv) {
		s := w.seed
		key := newEmbedKey(t, "web-1")
		registerKey(t, w.Env, w.AdminToken, key)
		u1 := key.token(t, "default", "a1", "u1")
		v2 := key.token(t, "default", "a2", "v2")
		for _, tok := range []string{u1, v2} {
			mustOK(t, w.DoAs(t, tok, `{ viewer { role } }`, nil))
		}
		body := credentialsPageBody(100, nil)
		admin, _ := w.page(t, w.AdminToken, body)
		w.cachedPage(t, w.AdminToken, body, admin.Raw)
		for _, id := range []int{s.a1Other.ID, s.a2Other.ID} {
			if !strings.Contains(admin.Raw, `"`+gid(id)+`"`) {
				t.Fatalf("the admin's page does not list %s: %.500s", gid(id), admin.Raw)
			}
		}
		for _, v := range []struct {
			token      string
			own, other int
		}{{u1, s.a1Other.ID, s.a2Other.ID}, {v2, s.a2Other.ID, s.a1Other.ID}} {
			r, _ := w.page(t, v.token, body)
			w.cachedPage(t, v.token, body, r.Raw)
			if !strings.Contains(r.Raw, `"`+gid(v.own)+`"`) {
				t.Fatalf("a customer's page does not list its own credential %s: %.500s", gid(v.own), r.Raw)
			}
			if strings.Contains(r.Raw, `"`+gid(v.other)+`"`) || r.Raw == admin.Raw {
				t.Fatalf("a customer's page lists another customer's credential %s: %.500s", gid(v.other), r.Raw)
			}
		}
	})
}

// Pages after different cursors are different entries, each cached.
func TestAnswerCacheCredentialsPageCursors(t *testing.T) {
	eachDBWizard(t, func(t *testing.T, w *wizardCacheEnv) {
		first := credentialsPageBody(2, nil)
		r1, _ := w.page(t, w.AdminToken, first)
		w.cachedPage(t, w.AdminToken, first, r1.Raw)
		info, _ := r1.Data["credentials"].(map[string]any)["pageInfo"].(map[string]any)
		cursor, _ := info["endCursor"].(string)
		if cursor == "" || info["hasNextPage"] != true {
			t.Fatalf("the first page of 2: %s", r1.Raw)
		}
		second := credentialsPageBody(2, cursor)
		r2, _ := w.page(t, w.AdminToken, second)
		if r2.Raw == r1.Raw {
			t.Fatalf("the page after %s is the first page: %s", cursor, r2.Raw)
		}
		w.cachedPage(t, w.AdminToken, second, r2.Raw)
		w.cachedPage(t, w.AdminToken, first, r1.Raw)
	})
}

// A page query that also selects a root field off the allowlist, or
// selects audit events, is computed afresh every time.
func TestAnswerCacheCredentialsPageNotCached(t *testing.T) {
	eachDBWizard(t, func(t *testing.T, w *wizardCacheEnv) {
		for _, q := range []string{
			`query { credentials(first: 100) { edges { node { id status } } } viewer { role } }`,
			`query { credentials(first: 100) { edges { node { id status } } } plugins(first: 5) { totalCount } }`,
			`query { credentials(first: 100) { edges { node { id auditEvents(first: 5) { totalCount } } } } }`,
			`query { customers(first: 10) { edges { node { id credentials(first: 5) { edges { node { id
				auditEvents(first: 1) { totalCount } } } } } } } }`,
		} {
			body := gqlBody(q, nil)
			w.page(t, w.AdminToken, body)
			w.notCached(t, w.AdminToken, body)
		}
		// The same page without the other root is cached.
		body := gqlBody(`query { credentials(first: 100) { edges { node { id status } } } }`, nil)
		r, _ := w.page(t, w.AdminToken, body)
		w.cachedPage(t, w.AdminToken, body, r.Raw)
	})
}
