package connection

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/auditevent"
	"github.com/plugboard/plugboard/internal/auth"
)

// The group commit of runtime-read audit entries: every runtime read must
// have its audit row committed before its answer is sent, and on SQLite
// every commit takes its turn on the one writer. Entries queued while a
// batch commits are written together in the next transaction, each caller
// answered when its own batch has committed. There is no timer: a lone read
// commits at once; under load a batch holds what arrived during the commit
// before it, and what queues while its leader yields once (lead).
const (
	// auditBatchMax bounds one transaction's rows.
	auditBatchMax = 256
	// auditFlushTimeout bounds one batch's commit, which runs for every
	// caller in it and so under none of their contexts.
	auditFlushTimeout = 30 * time.Second
	// auditParallelPostgres is how many batches commit at once on
	// PostgreSQL.
	auditParallelPostgres = 4
)

type groupCommit struct {
	db *ent.Client

	// dialect is the store's (dialect.SQLite when empty), for the
	// placeholders of the batch's INSERT.
	dialect string
	// parallel bounds the batches committing at once: 1 on SQLite (one
	// writer), more on PostgreSQL, where a commit waits for the network
	// and the WAL flush and concurrent commits share the flush.
	parallel int

	mu      sync.Mutex
	queue   []*pendingAudit
	leaders int // leaders taking batches off the queue

	// last is the size of the batch taken last.
	last atomic.Int64
	// batches counts the transactions committed, for tests and metrics.
	batches atomic.Int64
	// beforeCommit, when set, runs before each batch's transaction (tests
	// hold a commit with it to see entries queue behind it).
	beforeCommit func(n int)
}

type pendingAudit struct {
	entry auditEntry
	at    time.Time
	done  chan error // buffered: the leader never blocks on a caller
}

// write queues e, written at at, and returns once its batch committed, with
// the batch's error, or when ctx ends first (the entry is written all the
// same).
func (g *groupCommit) write(ctx context.Context, at time.Time, e auditEntry) error {
	p := &pendingAudit{entry: e, at: at, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, p)
	lead := g.leaders < max(g.parallel, 1)
	if lead {
		g.leaders++
	}
	g.mu.Unlock()
	if lead {
		go g.lead()
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lead commits one batch off the queue, in a goroutine of its own so the
// callers in it wait under their contexts, and hands the lead to a new one
// while entries wait.
func (g *groupCommit) lead() {
	if g.last.Load() > 1 {
		// Under load: let the requests that are about to queue do so, so
		// the batch is larger and its BEGIN and COMMIT are shared wider.
		runtime.Gosched()
	}
	g.mu.Lock()
	n := min(len(g.queue), auditBatchMax)
	batch := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.mu.Unlock()

	g.last.Store(int64(n))
	g.deliver(batch, g.commit(batch))

	g.mu.Lock()
	more := len(g.queue) > 0
	if !more {
		g.leaders--
	}
	g.mu.Unlock()
	if more {
		go g.lead()
	}
}

// deliver answers batch: with err, or when a batch of several failed, with
// each entry's own error written alone, so one bad row fails only its read.
func (g *groupCommit) deliver(batch []*pendingAudit, err error) {
	if err != nil && len(batch) > 1 {
		for _, p := range batch {
			p.done <- g.commit([]*pendingAudit{p})
		}
		return
	}
	for _, p := range batch {
		p.done <- err
	}
}

// commit writes batch in one transaction as plugboard itself: the entries
// name their organizations, and the batch belongs to no single request.
func (g *groupCommit) commit(batch []*pendingAudit) error {
	if g.beforeCommit != nil {
		g.beforeCommit(len(batch))
	}
	ctx, cancel := context.WithTimeout(auth.SystemContext(context.Background()), auditFlushTimeout)
	defer cancel()
	query, args := g.insert(batch)
	err := inTx(ctx, g.db, func(tx *ent.Tx) error {
		_, err := tx.ExecContext(ctx, query, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("writing %d audit entries: %w", len(batch), err)
	}
	g.batches.Add(1)
	return nil
}

// insert is the one INSERT of batch's rows. It is written without ent's
// builders: a batch is the runtime reads' hot path, and ent's bulk create
// costs a mutation, its hooks and a RETURNING per row. No hook applies to
// these rows: the tenant write hook lets plugboard itself through, and audit
// rows bump no generation (server.Generations).
func (g *groupCommit) insert(batch []*pendingAudit) (string, []any) {
	d := g.dialect
	if d == "" {
		d = dialect.SQLite
	}
	ins := entsql.Dialect(d).Insert(auditevent.Table).Columns(
		auditevent.FieldOrganizationID, auditevent.FieldActor, auditevent.FieldAction,
		auditevent.FieldMessage, auditevent.FieldAt, auditevent.FieldCredentialID, auditevent.FieldConnectionID)
	for _, p := range batch {
		e := p.entry
		ins.Values(e.orgID, e.actor, e.action, e.message, p.at, nullID(e.credentialID), nullID(e.connectionID))
	}
	return ins.Query()
}

// nullID is id, or NULL for 0 (no row).
func nullID(id int) any {
	if id == 0 {
		return nil
	}
	return id
}
