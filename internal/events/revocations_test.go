package events_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/plugboard/plugboard/internal/events"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// heard collects the revocations a bus hands its handlers, and whether the
// bus trusted caches while handing each.
type heard struct {
	mu      sync.Mutex
	got     []events.Revocation
	trusted []bool
}

func listen(b *events.Bus) *heard {
	h := &heard{}
	b.OnRevocation(func(r events.Revocation) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.got = append(h.got, r)
		h.trusted = append(h.trusted, b.Trusted())
	})
	return h
}

// wait polls until one heard revocation satisfies ok, failing after 10 s.
func (h *heard) wait(t *testing.T, what string, ok func(r events.Revocation, trusted bool) bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		h.mu.Lock()
		for i, r := range h.got {
			if ok(r, h.trusted[i]) {
				h.mu.Unlock()
				return
			}
		}
		h.mu.Unlock()
	}
	t.Fatalf("%s: never heard", what)
}

// TestRevocationsAcrossReplicas: a revocation published by one replica
// reaches the other; a replica whose listener connection is lost trusts no
// cache until it listens again, and then drops every cache.
func TestRevocationsAcrossReplicas(t *testing.T) {
	url := storetest.PostgresURL(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b := events.NewBus(nil), events.NewBus(nil)
	for _, bus := range []*events.Bus{a, b} {
		if err := bus.ConnectPostgres(ctx, url); err != nil {
			t.Fatal(err)
		}
	}
	ha := listen(a)
	if !a.Trusted() || !b.Trusted() {
		t.Fatal("listening buses do not trust their caches")
	}
	if err := b.PublishRevocation(ctx, events.Revocation{Kind: events.RevokedAPIToken, OrganizationID: 1, ID: 7}); err != nil {
		t.Fatal(err)
	}
	ha.wait(t, "a revocation from the other replica", func(r events.Revocation, _ bool) bool {
		return r.Kind == events.RevokedAPIToken && r.ID == 7 && r.OrganizationID == 1
	})

	// Cut every listener connection; each bus reconnects, dropping its
	// caches while it does not trust them yet.
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	ha.wait(t, "the flush after reconnecting", func(r events.Revocation, trusted bool) bool {
		if r.Kind == events.RevokedUnknown && trusted {
			t.Fatal("the caches were trusted while the listener was down")
		}
		return r.Kind == events.RevokedUnknown
	})
	for deadline := time.Now().Add(10 * time.Second); !a.Trusted(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the bus does not trust its caches again after reconnecting")
		}
	}
	// Listening again: revocations come through.
	if err := b.PublishRevocation(ctx, events.Revocation{Kind: events.RevokedSigningKey, OrganizationID: 1, ID: 9}); err != nil {
		t.Fatal(err)
	}
	ha.wait(t, "a revocation after reconnecting", func(r events.Revocation, _ bool) bool {
		return r.Kind == events.RevokedSigningKey && r.ID == 9
	})
}
