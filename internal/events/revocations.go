package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Kinds of Revocation.
const (
	// RevokedAPIToken: the API token ID was revoked.
	RevokedAPIToken = "api_token"
	// RevokedSigningKey: the signing key ID was revoked; every embedding
	// token it signed is refused.
	RevokedSigningKey = "signing_key"
	// ChangedRows: a write of the organization's credentials, connections,
	// templates or settings was committed; what a replica keeps in memory
	// of them is stale.
	ChangedRows = "rows"
	// RevokedOnPremResource: the on-prem resource ID was deleted or its
	// agent token rotated; the replica holding its agent's session cuts it.
	RevokedOnPremResource = "onprem_resource"
	// RevokedUnknown: revocations may have been missed (this replica's
	// listener was down): forget everything.
	RevokedUnknown = "unknown"
)

// Revocation says that something authentication trusts was revoked. It
// carries ids only, never a token or a key.
type Revocation struct {
	Kind           string `json:"kind"`
	OrganizationID int    `json:"org"`
	ID             int    `json:"id"`
	// Nonce lets the publishing replica recognise its own notification.
	Nonce string `json:"nonce,omitempty"`
}

// revocationChannel is the PostgreSQL notification channel of revocations.
const revocationChannel = "plugboard_revocations"

// echoWait bounds how long PublishRevocation waits for its own
// notification to come back through PostgreSQL.
const echoWait = 2 * time.Second

// OnRevocation registers fn to be called, on this replica, for every
// revocation made on any replica (and with RevokedUnknown when this
// replica may have missed some). fn must be quick.
func (b *Bus) OnRevocation(fn func(Revocation)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onRevoke = append(b.onRevoke, fn)
}

// Trusted reports whether caches of authentication may be trusted: always
// within one process; with PostgreSQL, only while this replica listens
// for revocations (while its listener is down, a revocation made on
// another replica could go unseen).
func (b *Bus) Trusted() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.remoteRevoke == nil || b.listening
}

// PublishRevocation tells this replica's handlers at once and, with
// PostgreSQL, every other replica through NOTIFY (sent after the
// revocation was committed). It then waits, up to echoWait, until its own
// notification has come back through PostgreSQL, so the notification has
// been delivered to every listening replica by the time it returns. An
// error means other replicas may not have been told.
func (b *Bus) PublishRevocation(ctx context.Context, r Revocation) error {
	b.revoked(r)
	b.mu.Lock()
	remote, listening := b.remoteRevoke, b.listening
	b.mu.Unlock()
	if remote == nil {
		return nil
	}
	r.Nonce = nonce()
	echo := make(chan struct{})
	if listening {
		b.mu.Lock()
		b.echoes[r.Nonce] = echo
		b.mu.Unlock()
		defer func() {
			b.mu.Lock()
			delete(b.echoes, r.Nonce)
			b.mu.Unlock()
		}()
	}
	payload, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := remote(ctx, revocationChannel, string(payload)); err != nil {
		b.log.Warn("telling other replicas of a revocation failed", "kind", r.Kind, "id", r.ID, "err", err)
		return err
	}
	if !listening {
		return nil
	}
	select {
	case <-echo:
	case <-time.After(echoWait):
		b.log.Warn("a revocation notification did not come back in time", "kind", r.Kind, "id", r.ID)
	case <-ctx.Done():
	}
	return nil
}

// NoticeInTx returns the statement that tells the other replicas of r
// when it runs in the transaction of the write r reports: PostgreSQL
// delivers the notice when, and only if, that transaction commits, and
// collapses identical notices of one transaction into one. ok is false
// without PostgreSQL (one process: nobody to tell). Unlike
// PublishRevocation it calls no handler here and waits for no echo:
// another replica hears of the write a delivery after its commit.
func (b *Bus) NoticeInTx(r Revocation) (query string, args []any, ok bool) {
	b.mu.Lock()
	remote := b.remoteRevoke
	b.mu.Unlock()
	if remote == nil {
		return "", nil, false
	}
	payload, err := json.Marshal(r)
	if err != nil {
		return "", nil, false
	}
	return "SELECT pg_notify($1, $2)", []any{revocationChannel, string(payload)}, true
}

// revoked calls the revocation handlers.
func (b *Bus) revoked(r Revocation) {
	b.mu.Lock()
	fns := append([]func(Revocation){}, b.onRevoke...)
	b.mu.Unlock()
	for _, fn := range fns {
		fn(r)
	}
}

// receiveRevocation handles a revocation notification from PostgreSQL.
func (b *Bus) receiveRevocation(payload string) {
	var r Revocation
	if err := json.Unmarshal([]byte(payload), &r); err != nil {
		b.log.Warn("events: malformed revocation notification", "err", err)
		r = Revocation{Kind: RevokedUnknown}
	}
	b.revoked(r)
	b.mu.Lock()
	echo, mine := b.echoes[r.Nonce]
	delete(b.echoes, r.Nonce)
	b.mu.Unlock()
	if mine && r.Nonce != "" {
		close(echo)
	}
}

// setListening records whether the listener is up. Coming back up, every
// cache is dropped first (revocations made meanwhile were not heard), and
// only then trusted again.
func (b *Bus) setListening(up bool) {
	b.mu.Lock()
	was := b.listening
	if !up {
		b.listening = false
	}
	b.mu.Unlock()
	if up && !was {
		b.revoked(Revocation{Kind: RevokedUnknown})
		b.mu.Lock()
		b.listening = true
		b.mu.Unlock()
	}
}

func nonce() string {
	var n [12]byte
	_, _ = rand.Read(n[:])
	return hex.EncodeToString(n[:])
}
