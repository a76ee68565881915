package oauth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"entgo.io/ent/dialect"
	"golang.org/x/sync/singleflight"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/events"
)

// Defaults of Config.
const (
	DefaultStateTTL           = 10 * time.Minute
	DefaultMargin             = 10 * time.Minute
	DefaultTokenTimeout       = 15 * time.Second
	DefaultMaxFailures        = 5
	DefaultRefreshConcurrency = 8
	DefaultSweepBatch         = 200
)

// Resolver returns a credential's connection type and its fully resolved
// values (plain inputs, decrypted secrets, defaults, rendered templates).
// connection.Service implements it.
type Resolver interface {
	Resolved(ctx context.Context, c *ent.Credential) (*ent.ConnectionType, map[string]string, error)
}

// Sealer encrypts and decrypts values, binding each to where it is stored
// by aad. secrets.Keyring implements it.
type Sealer interface {
	Encrypt(ctx context.Context, plaintext, aad []byte) ([]byte, error)
	Decrypt(ctx context.Context, ciphertext, aad []byte) ([]byte, error)
}

// Config configures a Service. DB, Dialect, Keys and Values are required;
// CallbackURL is required for the authorization code flow.
type Config struct {
	// DB is the ent client, with the tenant filter installed.
	DB *ent.Client
	// SQL is the pool under DB. Optional: on PostgreSQL it bounds
	// RefreshConcurrency below the pool size, since a refresh holds a
	// connection (its lock transaction) while it calls the provider.
	SQL *sql.DB
	// Dialect is dialect.SQLite or dialect.Postgres.
	Dialect string
	Keys    Sealer
	Values  Resolver
	// Events receives every status change; nil publishes nothing.
	Events events.Publisher
	// Logger gets no secret ever; nil means slog.Default(). The service adds
	// component=oauth to it.
	Logger *slog.Logger
	// HTTPClient makes the calls to providers (its Transport is used; the
	// deadline is TokenTimeout); nil means a client over
	// http.DefaultTransport.
	HTTPClient *http.Client
	// CallbackURL is the public URL of CallbackHandler, the redirect_uri
	// sent to providers, e.g. https://plugboard.example.com/oauth2/callback.
	CallbackURL string
	// StateTTL is how long an authorization may take (default 10 min).
	StateTTL time.Duration
	// DefaultMargin is how long before expiry a token is refreshed, for
	// types that declare no RefreshMarginSeconds (default 10 min).
	DefaultMargin time.Duration
	// TokenTimeout bounds every call to a token or revoke endpoint
	// (default 15 s).
	TokenTimeout time.Duration
	// MaxFailures is how many refreshes in a row may fail before the
	// credential is FAILED (default 5).
	MaxFailures int
	// RefreshConcurrency bounds the refreshes a process runs at once, in
	// the sweeper and for runtime reads together (default 8).
	RefreshConcurrency int
	// SweepBatch is how many due credentials one sweeper query reads
	// (default 200).
	SweepBatch int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ObserveRefresh, if set, is told the duration and outcome of every
	// refresh at a provider's token endpoint; the server turns it into a
	// latency histogram.
	ObserveRefresh func(d time.Duration, err error)
}

// Service runs the OAuth 2.0 flows of credentials. It is safe for
// concurrent use.
type Service struct {
	db          *ent.Client
	postgres    bool
	keys        Sealer
	values      Resolver
	events      events.Publisher
	log         *slog.Logger
	base        *http.Client
	callbackURL string

	stateTTL, margin, tokenTimeout time.Duration
	maxFailures, batch             int
	clock                          func() time.Time

	// flights makes one refresh per credential at a time in this process.
	flights singleflight.Group
	// slots bounds concurrent refreshes (RefreshConcurrency).
	slots chan struct{}
	// observeRefresh is Config.ObserveRefresh, or nil.
	observeRefresh func(time.Duration, error)
}

// New returns a Service. It panics when DB, Keys or Values is missing: a
// programming error caught at start-up.
func New(cfg Config) *Service {
	if cfg.DB == nil || cfg.Keys == nil || cfg.Values == nil {
		panic("oauth: New needs DB, Keys and Values")
	}
	s := &Service{
		db:           cfg.DB,
		postgres:     cfg.Dialect == dialect.Postgres,
		keys:         cfg.Keys,
		values:       cfg.Values,
		events:       cfg.Events,
		log:          cfg.Logger,
		base:         cfg.HTTPClient,
		callbackURL:  cfg.CallbackURL,
		stateTTL:     orDefault(cfg.StateTTL, DefaultStateTTL),
		margin:       orDefault(cfg.DefaultMargin, DefaultMargin),
		tokenTimeout: orDefault(cfg.TokenTimeout, DefaultTokenTimeout),
		maxFailures:  cfg.MaxFailures,
		batch:        cfg.SweepBatch,
		clock:        cfg.Now,

		observeRefresh: cfg.ObserveRefresh,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "oauth")
	if s.base == nil {
		s.base = &http.Client{Transport: http.DefaultTransport}
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.maxFailures <= 0 {
		s.maxFailures = DefaultMaxFailures
	}
	if s.batch <= 0 {
		s.batch = DefaultSweepBatch
	}
	n := cfg.RefreshConcurrency
	if n <= 0 {
		n = DefaultRefreshConcurrency
	}
	if s.postgres && cfg.SQL != nil {
		// Leave a connection free for what a refresh reads outside its
		// lock transaction (e.g. the keyring's data keys).
		if pool := cfg.SQL.Stats().MaxOpenConnections; pool > 0 && n > pool-1 {
			n = max(1, pool-1)
		}
	}
	s.slots = make(chan struct{}, n)
	return s
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (s *Service) now() time.Time { return s.clock().UTC() }

// acquire takes a refresh slot, or fails when ctx ends first.
func (s *Service) acquire(ctx context.Context) (func(), error) {
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// withTx runs fn in a transaction, rolling back on error or panic.
func (s *Service) withTx(ctx context.Context, fn func(tx *ent.Tx) error) (err error) {
	tx, err := s.db.Tx(ctx)
	if err != nil {
		return fmt.Errorf("starting transaction: %w", err)
	}
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

// Audit actors of work the service does on its own.
const (
	actorCallback = "oauth2:callback"
	actorRefresh  = "oauth2:refresh"
)

// audit writes one entry of the credential's connection log. msg never
// holds a value of the credential.
func (s *Service) audit(ctx context.Context, db *ent.Client, c *ent.Credential, actor, action, msg string) error {
	return db.AuditEvent.Create().
		SetOrganizationID(c.OrganizationID).
		SetCredentialID(c.ID).
		SetConnectionID(c.ConnectionID).
		SetActor(actor).
		SetAction(action).
		SetMessage(msg).
		SetAt(s.now()).
		Exec(ctx)
}

// transition is a status change to audit and publish.
type transition struct {
	cred     *ent.Credential
	from, to credential.Status
	detail   string
}

// auditTransition writes the status_changed entry of t, if the status
// changed.
func (s *Service) auditTransition(ctx context.Context, db *ent.Client, t transition, actor string) error {
	if t.from == t.to {
		return nil
	}
	return s.audit(ctx, db, t.cred, actor, "credential.status_changed", fmt.Sprintf("status %s → %s", t.from, t.to))
}

// publish announces t after its transaction committed.
func (s *Service) publish(ctx context.Context, t transition) {
	if s.events == nil || t.from == t.to {
		return
	}
	s.events.Publish(context.WithoutCancel(ctx), events.StatusChange{
		OrganizationID: t.cred.OrganizationID,
		CredentialID:   t.cred.ID,
		ConnectionID:   t.cred.ConnectionID,
		From:           string(t.from),
		To:             string(t.to),
		Detail:         t.detail,
		At:             s.now(),
	})
}

// singleflightResult is what a refresh flight delivers.
type singleflightResult = singleflight.Result

// requireAdminOrCustomer lets an organization admin, or a customer's user on
// its own credentials (the tenant filter decides which credentials a
// customer user finds), start and end authorizations: the wizard's single
// Connect button.
func requireAdminOrCustomer(ctx context.Context) (*auth.Viewer, error) {
	v, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	if v.Role != auth.RoleOrgAdmin && v.Role != auth.RoleCustomerUser {
		return nil, fmt.Errorf("%w: this needs an organization admin or a customer user", auth.ErrForbidden)
	}
	return v, nil
}
