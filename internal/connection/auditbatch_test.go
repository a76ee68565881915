package connection

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/auditevent"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// auditWorld is a store with one organization and the group commit over it.
type auditWorld struct {
	sys context.Context
	db  *ent.Client
	org int
	g   *groupCommit
}

func newAuditWorld(t *testing.T, s *store.Store) *auditWorld {
	sys := auth.SystemContext(t.Context())
	org := s.Client.Organization.Create().SetName("Audited").SetSlug("audited").SaveX(sys)
	return &auditWorld{sys: sys, db: s.Client, org: org.ID, g: &groupCommit{db: s.Client, dialect: s.Dialect}}
}

func (w *auditWorld) entry(message string) auditEntry {
	return auditEntry{orgID: w.org, actor: "token:test", action: "credential.runtime_read", message: message}
}

func (w *auditWorld) rows(t *testing.T) int {
	t.Helper()
	return w.db.AuditEvent.Query().Where(auditevent.Action("credential.runtime_read")).CountX(w.sys)
}

// TestGroupCommitBatchesEntriesQueuedDuringACommit holds the first commit
// until 20 more entries wait behind it: they are written in one transaction,
// and every caller returns only after its row is committed.
func TestGroupCommitBatchesEntriesQueuedDuringACommit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newAuditWorld(t, s)
		const behind = 20
		release := make(chan struct{})
		var sizes []int
		w.g.beforeCommit = func(n int) {
			sizes = append(sizes, n) // leaders run one at a time
			if len(sizes) == 1 {
				<-release
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, behind+1)
		write := func(msg string) {
			defer wg.Done()
			err := w.g.write(t.Context(), time.Now(), w.entry(msg))
			if err == nil && w.rows(t) == 0 {
				err = errors.New("write returned before its row was committed")
			}
			errs <- err
		}
		wg.Add(1)
		go write("first")
		waitQueued(t, w.g, 0) // the first is taken off the queue by its leader
		for range behind {
			wg.Add(1)
			go write("behind")
		}
		waitQueued(t, w.g, behind)
		close(release)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got := w.rows(t); got != behind+1 {
			t.Errorf("%d rows, want %d", got, behind+1)
		}
		if len(sizes) != 2 || sizes[0] != 1 || sizes[1] != behind {
			t.Errorf("batch sizes %v, want [1 %d]", sizes, behind)
		}
		if got := w.g.batches.Load(); got != 2 {
			t.Errorf("%d transactions committed, want 2", got)
		}
	})
}

// waitQueued waits until n entries wait in g's queue with a leader at work.
func waitQueued(t *testing.T, g *groupCommit, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		g.mu.Lock()
		queued, leading := len(g.queue), g.leaders > 0
		g.mu.Unlock()
		if queued == n && leading {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue holds %d entries (leading %v), want %d", queued, leading, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupCommitBadEntryFailsOnlyItsRead: a batch whose insert fails is
// written entry by entry, so the entry naming a missing credential fails
// and the others are committed.
func TestGroupCommitBadEntryFailsOnlyItsRead(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newAuditWorld(t, s)
		release := make(chan struct{})
		first := true
		w.g.beforeCommit = func(int) {
			if first {
				first = false
				<-release
			}
		}
		bad := w.entry("bad")
		bad.credentialID = 1 << 30
		var wg sync.WaitGroup
		results := make([]error, 4)
		for i := range results {
			e := w.entry("good")
			if i == 2 {
				e = bad
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = w.g.write(t.Context(), time.Now(), e)
			}()
			if i == 0 {
				waitQueued(t, w.g, 0)
			}
		}
		waitQueued(t, w.g, 3)
		close(release)
		wg.Wait()
		for i, err := range results {
			if (err != nil) != (i == 2) {
				t.Errorf("entry %d: err %v", i, err)
			}
		}
		if got := w.rows(t); got != 3 {
			t.Errorf("%d rows, want the 3 good ones", got)
		}
	})
}

// TestGroupCommitEntryOfAnEndedRequestIsWritten: a caller whose context
// ends while its batch waits gets the context's error, and its entry is
// written all the same (a read that was not answered may be audited; a read
// answered is always audited).
func TestGroupCommitEntryOfAnEndedRequestIsWritten(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newAuditWorld(t, s)
		release := make(chan struct{})
		w.g.beforeCommit = func(int) { <-release }
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- w.g.write(ctx, time.Now(), w.entry("ended")) }()
		waitQueued(t, w.g, 0)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("write: %v, want context.Canceled", err)
		}
		close(release)
		deadline := time.Now().Add(30 * time.Second)
		for w.rows(t) != 1 {
			if time.Now().After(deadline) {
				t.Fatal("the entry of the ended request was never written")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}
