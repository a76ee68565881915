package server

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/events"
)

// Generations count the changes of what cached answers are computed from:
// one counter per organization, bumped after every committed write of its
// rows, one for writes whose organization is not known (plugboard across
// organizations, the plugin catalog), and the catalog's version. An answer
// computed at a generation is good only while the generation is the same.
//
// Writes of audit events and API tokens do not bump: no cached answer
// shows them (answers that select them are never cached), and a token
// check or a runtime read writes them on every request.
type Generations struct {
	global  atomic.Uint64
	orgs    sync.Map // organization ID → *atomic.Uint64
	catalog func() uint64
	// bus, once Share connected it, tells other replicas of the writes
	// of told types, and says whether theirs are heard.
	bus atomic.Pointer[events.Bus]
}

// told are the entity types whose committed writes other replicas are told
// of at once (events.ChangedRows), so what they keep in memory of a
// credential (connection.Changes) follows a deletion, a rotation or a
// disconnect there without waiting for a TTL.
var told = map[string]bool{
	ent.TypeCredential: true, ent.TypeConnection: true,
	ent.TypeConnectionTemplate: true, ent.TypeOrganization: true,
}

// Generation is the state of one organization's data at one moment.
type Generation struct {
	global, org, catalog uint64
}

// notBumped are the entity types whose writes no cached answer depends on.
var notBumped = map[string]bool{ent.TypeAuditEvent: true, ent.TypeAPIToken: true}

// NewGenerations returns generations that include catalog's version (nil:
// none).
func NewGenerations(catalog func() uint64) *Generations {
	return &Generations{catalog: catalog}
}

// Current returns the generation of organization orgID now.
func (g *Generations) Current(orgID int) Generation {
	gen := Generation{global: g.global.Load()}
	if c, ok := g.orgs.Load(orgID); ok {
		gen.org = c.(*atomic.Uint64).Load()
	}
	if g.catalog != nil {
		gen.catalog = g.catalog()
	}
	return gen
}

// Stamp implements connection.Changes: the sum of the organization's
// counters (each only grows, so any bump changes it); not ok while other
// replicas' writes may go unheard (the bus's listener is down).
func (g *Generations) Stamp(orgID int) (uint64, bool) {
	if b := g.bus.Load(); b != nil && !b.Trusted() {
		return 0, false
	}
	gen := g.Current(orgID)
	return gen.global + gen.org + gen.catalog, true
}

// Bump records a change of organization orgID's data; 0 means a change
// whose organization is not known, which every organization sees.
func (g *Generations) Bump(orgID int) {
	if orgID == 0 {
		g.global.Add(1)
		return
	}
	c, ok := g.orgs.Load(orgID)
	if !ok {
		c, _ = g.orgs.LoadOrStore(orgID, new(atomic.Uint64))
	}
	c.(*atomic.Uint64).Add(1)
}

// txMutation is what every generated mutation offers: the transaction it
// runs in, if any.
type txMutation interface {
	Tx() (*ent.Tx, error)
}

// Hook returns the ent hook that bumps the generation of a write's
// organization once the write is committed: at once outside a
// transaction, after the commit inside one (a reader that takes the
// generation before it reads can then never keep an answer read before
// the commit under the generation after it). A told write inside a
// transaction tells the other replicas in it (noticeInTx).
func (g *Generations) Hook() ent.Hook {
	return func(next ent.Mutator) ent.Mutator {
		return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
			v, err := next.Mutate(ctx, m)
			if err != nil || notBumped[m.Type()] {
				return v, err
			}
			org, tell := writeOrganization(ctx, m), told[m.Type()]
			if tx := txOf(m); tx != nil {
				if tell && org != 0 {
					sent, err := g.noticeInTx(ctx, tx, org)
					if err != nil {
						return nil, err
					}
					tell = !sent // else committed tells them after the commit
				}
				tx.OnCommit(func(next ent.Committer) ent.Committer {
					return ent.CommitFunc(func(ctx context.Context, tx *ent.Tx) error {
						err := next.Commit(ctx, tx)
						g.committed(ctx, org, tell && err == nil)
						return err
					})
				})
			} else {
				g.committed(ctx, org, tell)
			}
			return v, nil
		})
	}
}

// committed bumps org's generation after a commit and, when tell is set
// (a write outside a transaction: one inside told them with its commit,
// noticeInTx), tells the other replicas (which bump theirs), waiting
// until the notification has come back through PostgreSQL. A write of no
// known organization is not told: those are plugboard's own (token
// refreshes, plugin syncs), whose rows other replicas re-read within
// their TTLs.
func (g *Generations) committed(ctx context.Context, org int, tell bool) {
	g.Bump(org)
	b := g.bus.Load()
	if !tell || org == 0 || b == nil {
		return
	}
	_ = b.PublishRevocation(ctx, events.Revocation{Kind: events.ChangedRows, OrganizationID: org})
}

// noticeInTx tells the other replicas of a write of org in tx by a notice
// PostgreSQL delivers when tx commits (events.Bus.NoticeInTx): no round
// trip after the commit and no wait for an echo, as PublishRevocation
// has. sent is false when there is no one to tell this way.
func (g *Generations) noticeInTx(ctx context.Context, tx *ent.Tx, org int) (sent bool, err error) {
	b := g.bus.Load()
	if b == nil {
		return false, nil
	}
	query, args, ok := b.NoticeInTx(events.Revocation{Kind: events.ChangedRows, OrganizationID: org})
	if !ok {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, query, args...); err != nil {
		return false, fmt.Errorf("telling the other replicas: %w", err)
	}
	return true, nil
}

// txOf returns the transaction m runs in, or nil.
func txOf(m ent.Mutation) *ent.Tx {
	tm, ok := m.(txMutation)
	if !ok {
		return nil
	}
	tx, err := tm.Tx()
	if err != nil {
		return nil
	}
	return tx
}

// writeOrganization is the organization a write changes: the viewer's
// (the tenant write hook holds every write to it), else the row's
// organization_id when the mutation sets it, else 0 (not known).
func writeOrganization(ctx context.Context, m ent.Mutation) int {
	if v := auth.FromContext(ctx); v != nil && v.OrganizationID != 0 {
		return v.OrganizationID
	}
	if m.Type() == ent.TypeOrganization {
		return 0
	}
	if id, ok := m.Field("organization_id"); ok {
		if n, isInt := id.(int); isInt {
			return n
		}
	}
	return 0
}

// Share connects the generations to the bus shared by the replicas: every
// credential status change the bus delivers, whichever replica made it,
// bumps its organization (the change is committed there before it is
// published, so the next answer here reads it), as does every write of a
// told type another replica committed (events.ChangedRows); and when this
// replica may have missed notifications, every generation moves on.
func (g *Generations) Share(bus *events.Bus) {
	bus.Watch(func(ev events.StatusChange) { g.Bump(ev.OrganizationID) })
	bus.OnRevocation(func(r events.Revocation) {
		switch r.Kind {
		case events.ChangedRows:
			if r.OrganizationID != 0 {
				g.Bump(r.OrganizationID)
			}
		case events.RevokedUnknown:
			g.Bump(0)
		}
	})
	g.bus.Store(bus)
}
