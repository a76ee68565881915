package connection_test

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection"
	"github.com/plugboard/plugboard/internal/connection/scopes"
	"github.com/plugboard/plugboard/internal/secrets"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// slowRefresh makes p's refreshes take a while, so concurrent readers
// overlap with them.
func slowRefresh(p *provider) {
	p.onToken = func(_ http.ResponseWriter, _ *http.Request, form url.Values) bool {
		if form.Get("grant_type") == "refresh_token" {
			time.Sleep(100 * time.Millisecond)
		}
		return false
	}
}

// readAll calls Token n times at once, spread over the services, and
// returns the access tokens they got.
func readAll(t *testing.T, ctx context.Context, svcs []*connection.Service, id, n int) map[string]int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string]int{}
	start := make(chan struct{})
	for i := range n {
		svc := svcs[i%len(svcs)]
		wg.Go(func() {
			<-start
			tok, err := svc.Token(ctx, id, 0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("Token: %v", err)
				return
			}
			got[tok.AccessToken]++
		})
	}
	close(start)
	wg.Wait()
	return got
}

func TestConcurrentReadsRefreshOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, envOptions{})
		p := newProvider(t)
		cred, _ := e.authorizedCredential(t, p)
		slowRefresh(p)
		e.expire(t, cred.ID)

		got := readAll(t, e.runtimeCtx(t), []*connection.Service{e.svc}, cred.ID, 200)
		if n := p.refreshCalls.Load(); n != 1 {
			t.Fatalf("200 concurrent reads made %d refresh calls, want 1", n)
		}
		if len(got) != 1 {
			t.Fatalf("the readers got %d different tokens", len(got))
		}
		if c := e.get(t, cred.ID); c.Status != credential.StatusACTIVE || !c.TokenExpiresAt.After(e.clock.Now()) {
			t.Fatalf("after the refresh: %s %v", c.Status, c.TokenExpiresAt)
		}
	})
}

// TestReplicasRefreshOnce runs two services, each with its own database
// pool and singleflight, like two replicas on one PostgreSQL database.
func TestReplicasRefreshOnce(t *testing.T) {
	dbURL := storetest.PostgresURL(t)
	open := func() *store.Store {
		s, err := store.Open(t.Context(), dbURL, "", nil, store.WithMaxOpenConns(8))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	st1 := open()
	if err := st1.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	st2 := open()
	auth.InstallTenantFilter(st2.Client, scopes.CustomerVisible())

	e := newEnv(t, st1, envOptions{})
	keys2 := secrets.NewKeyring(e.master, &store.KeyStore{DB: st2.Client})
	replica := e.newServiceOn(envOptions{}, st2, keys2)

	p := newProvider(t)
	cred, _ := e.authorizedCredential(t, p)
	slowRefresh(p)
	for round := range 3 {
		e.expire(t, cred.ID)
		before := p.refreshCalls.Load()
		got := readAll(t, e.runtimeCtx(t), []*connection.Service{e.svc, replica}, cred.ID, 100)
		if n := p.refreshCalls.Load() - before; n != 1 {
			t.Fatalf("round %d: 100 reads on two replicas made %d refresh calls, want 1", round, n)
		}
		if len(got) != 1 {
			t.Fatalf("round %d: the readers got %d different tokens", round, len(got))
		}
	}

	// Both replicas sweeping at once refresh every credential once.
	ct := e.slackLike(t, connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE, p.URL(), nil)
	p.onToken = nil
	ids := e.seedDue(t, p, ct, 100)
	before := p.refreshCalls.Load()
	var wg sync.WaitGroup
	var stats [2]connection.SweepStats
	for i, svc := range []*connection.Service{e.svc, replica} {
		wg.Go(func() {
			var err error
			stats[i], err = svc.Sweep(e.sys)
			if err != nil {
				t.Errorf("sweep: %v", err)
			}
		})
	}
	wg.Wait()
	if n := p.refreshCalls.Load() - before; n != int64(len(ids)) {
		t.Fatalf("two replicas sweeping made %d refresh calls for %d credentials (%+v)", n, len(ids), stats)
	}
	if stats[0].Refreshed+stats[1].Refreshed != len(ids) {
		t.Errorf("sweep stats %+v", stats)
	}
}
