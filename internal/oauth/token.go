package oauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/internal/secrets/sealed"
)

// Token is an OAuth 2.0 token of a credential. Printing or logging it never
// shows the access token, the refresh token or the extra fields: String,
// GoString, Format and LogValue redact them.
type Token struct {
	AccessToken  string
	TokenType    string
	RefreshToken string
	// Expiry is when the access token expires; zero means never.
	Expiry time.Time
	// Scopes are the granted scopes: the response's scope field if it had
	// one, else the requested scopes.
	Scopes []string
	// Extra holds the other fields of the token response (id_token,
	// provider-specific ids, ...); they may be secret.
	Extra map[string]any
}

// String describes the token without its secrets.
func (t Token) String() string {
	var b strings.Builder
	b.WriteString("oauth.Token{type: ")
	b.WriteString(strconv.Quote(t.TokenType))
	b.WriteString(", access token: ")
	b.WriteString(redactedOrEmpty(t.AccessToken))
	b.WriteString(", refresh token: ")
	b.WriteString(redactedOrEmpty(t.RefreshToken))
	b.WriteString(", expiry: ")
	if t.Expiry.IsZero() {
		b.WriteString("never")
	} else {
		b.WriteString(t.Expiry.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, ", scopes: %q, extra: %s}", t.Scopes, extraKeys(t.Extra))
	return b.String()
}

// GoString is String, so %#v redacts too.
func (t Token) GoString() string { return t.String() }

// Format implements fmt.Formatter: every verb prints String.
func (t Token) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		_, _ = io.WriteString(f, strconv.Quote(t.String()))
		return
	}
	_, _ = io.WriteString(f, t.String())
}

// LogValue implements slog.LogValuer without the secrets.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("type", t.TokenType),
		slog.Bool("access_token_set", t.AccessToken != ""),
		slog.Bool("refresh_token_set", t.RefreshToken != ""),
		slog.Time("expiry", t.Expiry),
		slog.Any("scopes", t.Scopes),
	)
}

func redactedOrEmpty(s string) string {
	if s == "" {
		return "(none)"
	}
	return "[redacted]"
}

func extraKeys(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return "[" + strings.Join(keys, " ") + "]"
}

// record is the sealed JSON form of a Token.
type record struct {
	AccessToken  string         `json:"access_token"`
	TokenType    string         `json:"token_type,omitempty"`
	RefreshToken string         `json:"refresh_token,omitempty"`
	Expiry       *time.Time     `json:"expiry,omitempty"`
	Scopes       []string       `json:"scopes,omitempty"`
	Extra        map[string]any `json:"extra,omitempty"`
}

// Seal encrypts tok for credential credID.
func (s *Service) Seal(ctx context.Context, credID int, tok *Token) ([]byte, error) {
	r := record{
		AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken,
		Scopes: tok.Scopes, Extra: tok.Extra,
	}
	if !tok.Expiry.IsZero() {
		e := tok.Expiry.UTC()
		r.Expiry = &e
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding the token of credential %d: %w", credID, errWithoutDetail(err))
	}
	defer clear(b)
	ct, err := s.keys.Encrypt(ctx, b, sealed.CredentialToken.AAD(credID))
	if err != nil {
		return nil, fmt.Errorf("encrypting the token of credential %d: %w", credID, err)
	}
	return ct, nil
}

// Open decrypts the token of c; nil when it holds none. The expiry column
// is authoritative: it is what the sweeper reads.
func (s *Service) Open(ctx context.Context, c *ent.Credential) (*Token, error) {
	if len(c.Token) == 0 {
		return nil, nil
	}
	b, err := s.keys.Decrypt(ctx, c.Token, sealed.CredentialToken.AAD(c.ID))
	if err != nil {
		return nil, fmt.Errorf("decrypting the token of credential %d: %w", c.ID, err)
	}
	defer clear(b)
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decrypting the token of credential %d: malformed token payload", c.ID)
	}
	tok := &Token{
		AccessToken: r.AccessToken, TokenType: r.TokenType, RefreshToken: r.RefreshToken,
		Scopes: r.Scopes, Extra: r.Extra,
	}
	switch {
	case c.TokenExpiresAt != nil:
		tok.Expiry = c.TokenExpiresAt.UTC()
	case r.Expiry != nil:
		tok.Expiry = r.Expiry.UTC()
	}
	return tok, nil
}

// errWithoutDetail keeps only the type of an encoding error, whose text
// could quote a value.
func errWithoutDetail(err error) error { return fmt.Errorf("%T", err) }
