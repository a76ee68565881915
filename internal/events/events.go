// Package events fans out credential status changes to subscribers, and
// revocations of API tokens and signing keys to the caches of
// authentication: within one process directly, and across replicas that
// share a PostgreSQL database through LISTEN/NOTIFY.
package events

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"
)

// StatusChange is one transition of a credential's status. It carries no
// value of the credential.
type StatusChange struct {
	OrganizationID int       `json:"org"`
	CredentialID   int       `json:"cred"`
	ConnectionID   int       `json:"conn"`
	From           string    `json:"from"`
	To             string    `json:"to"`
	Detail         string    `json:"detail,omitempty"`
	At             time.Time `json:"at"`
}

// Publisher publishes status changes.
type Publisher interface {
	Publish(ctx context.Context, ev StatusChange)
}

// subscriber is one open subscription.
type subscriber struct {
	org, cred int
	ch        chan StatusChange
}

// Bus delivers status changes to subscribers of the same organization. A
// slow subscriber loses events rather than slowing publishers down.
type Bus struct {
	log *slog.Logger

	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	remote func(ctx context.Context, ev StatusChange) error
	// watchers see every status change of every organization (Watch).
	watchers []func(StatusChange)

	// Revocations (revocations.go).
	onRevoke     []func(Revocation)
	remoteRevoke func(ctx context.Context, channel, payload string) error
	listening    bool                     // the PostgreSQL listener is up
	echoes       map[string]chan struct{} // nonce → waiting publisher
}

// NewBus returns a bus delivering within this process.
func NewBus(log *slog.Logger) *Bus {
	if log == nil {
		log = slog.Default()
	}
	return &Bus{log: log, subs: map[*subscriber]struct{}{}, echoes: map[string]chan struct{}{}}
}

// Publish delivers ev to this process's subscribers and, when the bus is
// connected to PostgreSQL, to every other replica's.
func (b *Bus) Publish(ctx context.Context, ev StatusChange) {
	b.mu.Lock()
	remote := b.remote
	b.mu.Unlock()
	if remote != nil {
		// Delivered back to this process by the listener too, so every
		// replica sees events in one order.
		if err := remote(ctx, ev); err == nil {
			return
		} else {
			b.log.Warn("publishing a status change to other replicas failed; delivering locally only", "err", err)
		}
	}
	b.deliver(ev)
}

func (b *Bus) deliver(ev StatusChange) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, fn := range b.watchers {
		fn(ev)
	}
	for s := range b.subs {
		if s.org != ev.OrganizationID || (s.cred != 0 && s.cred != ev.CredentialID) {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			b.log.Warn("a status subscriber is too slow; dropped an event", "credential", ev.CredentialID)
		}
	}
}

// Subscribe returns the status changes of the organization's credentials
// (only of credentialID unless it is 0) until ctx ends.
func (b *Bus) Subscribe(ctx context.Context, orgID, credentialID int) <-chan StatusChange {
	s := &subscriber{org: orgID, cred: credentialID, ch: make(chan StatusChange, 64)}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	out := make(chan StatusChange)
	go func() {
		defer close(out)
		defer func() {
			b.mu.Lock()
			delete(b.subs, s)
			b.mu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-s.ch:
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// Watch registers fn to be called, on this replica, for every status
// change of every organization published on any replica (with PostgreSQL,
// as its notification arrives). fn must be quick and must not use the bus.
func (b *Bus) Watch(fn func(StatusChange)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.watchers = append(b.watchers, fn)
}

// Subscribers counts open subscriptions.
func (b *Bus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

func encode(ev StatusChange) (string, error) {
	b, err := json.Marshal(ev)
	return string(b), err
}
