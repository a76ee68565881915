package oauth

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/plugboard/plugboard/ent"
)

// Defaults of Config.
const (
	DefaultStateTTL     = 10 * time.Minute
	DefaultMargin       = 10 * time.Minute
	DefaultTokenTimeout = 15 * time.Second
)

// Sealer encrypts and decrypts values, binding each to where it is stored
// by aad. secrets.Keyring implements it.
type Sealer interface {
	Encrypt(ctx context.Context, plaintext, aad []byte) ([]byte, error)
	Decrypt(ctx context.Context, ciphertext, aad []byte) ([]byte, error)
}

// Config configures a Service. DB and Keys are required; CallbackURL is
// required for the authorization code flow.
type Config struct {
	// DB is the ent client, with the tenant filter installed. The engine
	// reads organizations (redirect allow-lists) and keeps its own
	// authorizations in progress (OAuthState rows); it writes no credential.
	DB   *ent.Client
	Keys Sealer
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
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ObserveRefresh, if set, is told the duration and outcome of every
	// refresh at a provider's token endpoint; the server turns it into a
	// latency histogram.
	ObserveRefresh func(d time.Duration, err error)
}

// Service is plugboard's OAuth 2.0 token engine: it builds authorize URLs,
// exchanges codes, refreshes and revokes, and returns tokens and typed
// errors. It stores no credential: internal/connection owns credential rows
// and their status. It is safe for concurrent use.
type Service struct {
	db          *ent.Client
	keys        Sealer
	log         *slog.Logger
	base        *http.Client
	callbackURL string

	stateTTL, margin, tokenTimeout time.Duration
	clock                          func() time.Time
	// observeRefresh is Config.ObserveRefresh, or nil.
	observeRefresh func(time.Duration, error)
}

// New returns a Service. It panics when DB or Keys is missing: a
// programming error caught at start-up.
func New(cfg Config) *Service {
	if cfg.DB == nil || cfg.Keys == nil {
		panic("oauth: New needs DB and Keys")
	}
	s := &Service{
		db:           cfg.DB,
		keys:         cfg.Keys,
		log:          cfg.Logger,
		base:         cfg.HTTPClient,
		callbackURL:  cfg.CallbackURL,
		stateTTL:     orDefault(cfg.StateTTL, DefaultStateTTL),
		margin:       orDefault(cfg.DefaultMargin, DefaultMargin),
		tokenTimeout: orDefault(cfg.TokenTimeout, DefaultTokenTimeout),
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
	return s
}

// TokenTimeout is the deadline of one call to a token or revoke endpoint.
func (s *Service) TokenTimeout() time.Duration { return s.tokenTimeout }

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (s *Service) now() time.Time { return s.clock().UTC() }
