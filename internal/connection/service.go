package connection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/internal/egress"
	"github.com/plugboard/plugboard/internal/events"
	"github.com/plugboard/plugboard/internal/oauth"
	"github.com/plugboard/plugboard/plugins/sdk"
)

// Plugins is what the service needs of the plugin host.
type Plugins interface {
	Validate(ctx context.Context, typeKey string, values map[string]string) (*sdk.ValidateResponse, error)
	Test(ctx context.Context, typeKey string, values map[string]string, tok *sdk.Token) (*sdk.TestResponse, error)
	// TestsThroughHost reports whether the type's plugin tests through the
	// host; TestThroughHost then runs its Test, which sends each request
	// with rt and is never handed a secret value.
	TestsThroughHost(typeKey string) bool
	TestThroughHost(ctx context.Context, typeKey string, values map[string]string, tok *sdk.Token, rt http.RoundTripper) (*sdk.TestResponse, error)
}

// Sealer encrypts and decrypts secrets, binding each to its row by aad.
type Sealer interface {
	Encrypt(ctx context.Context, plaintext, aad []byte) ([]byte, error)
	Decrypt(ctx context.Context, ciphertext, aad []byte) ([]byte, error)
}

// Service runs the connection and credential rules over the store.
type Service struct {
	DB      *ent.Client
	Plugins Plugins
	Keys    Sealer
	Log     *slog.Logger
	// Events receives credential status changes; nil drops them.
	Events events.Publisher
	// OAuth is the token engine: authorize URLs, code exchange, refresh,
	// revoke. The service stores what it returns. nil refuses OAuth 2.0
	// work (saves of OAUTH2_CLIENT_CREDENTIALS types, token reads).
	OAuth *oauth.Service
	// Refresh configures the refreshes of stored tokens.
	Refresh RefreshOptions
	// Webhooks is where webhook endpoints may point.
	Webhooks WebhookPolicy
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Egress is the address policy of the credential proxy's calls; an
	// organization's allow_private_networks adds private ranges.
	Egress egress.Policy
	// Tunnel reaches on-prem resources through their agents
	// (internal/onprem.Hub); nil refuses every on-prem stream.
	Tunnel Tunnel
	// Replica is this replica's URL (--replica-url), recorded as the
	// holder of the agent sessions it holds so other replicas relay
	// streams to it; "" for a single replica.
	Replica string
	// AgentHeartbeat is how often the hub pings agents (zero: 15s); a
	// resource not seen for three of them is not connected.
	AgentHeartbeat time.Duration
	// agents maps a resource to what its agent authenticated with
	// (agentAuth): the organization, so a stream cut by the resource's
	// deletion is still audited there, and the token's hash, so a
	// heartbeat finds a token rotated on another replica.
	agents sync.Map
	// runtimeFwd are the forwarders of bound credentials' runtime reads.
	runtimeFwd runtimeForwarders

	refreshInit sync.Once
	refresh     *refresher

	// Catalog, when set, is the plugin catalog this process syncs: its
	// version tells when the cached connection types are stale.
	Catalog *Catalog

	// Changes, when set, tells when an organization's rows changed: the
	// runtime read and the proxy then keep the credential rows they load
	// (runtimecache.go). nil reads them from the store every time.
	Changes Changes

	auditInit sync.Once
	audits    *groupCommit
	types     typeCache
	orgs      orgSettings
	rows      runtimeRows
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// withTx runs fn in a transaction, rolling back on error or panic. It is
// the one transaction helper of the domain: what a transition publishes
// runs once it commits.
func (s *Service) withTx(ctx context.Context, fn func(tx *ent.Tx) error) error {
	return inTx(ctx, s.DB, fn)
}

// inTx is withTx over db, for the domain's parts that are not a Service
// (Access).
func inTx(ctx context.Context, db *ent.Client, fn func(tx *ent.Tx) error) (err error) {
	tx, err := db.Tx(ctx)
	if err != nil {
		return fmt.Errorf("starting transaction: %w", err)
	}
	defer func() {
		if v := recover(); v != nil {
			_ = tx.Rollback()
			panic(v)
		}
	}()
	return finishTx(tx, fn(tx))
}

// finishTx commits tx when err is nil and rolls it back otherwise.
func finishTx(tx *ent.Tx, err error) error {
	if err != nil {
		if rerr := tx.Rollback(); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}
