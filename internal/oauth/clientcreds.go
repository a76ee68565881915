package oauth

import (
	"context"
	"fmt"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/plugins/sdk"
)

// FetchClientCredentials obtains a token with the client credentials grant
// of an OAUTH2_CLIENT_CREDENTIALS type, from the values a save is about to
// store (resolved: defaults and templates applied). The save pipeline calls
// it before storing; a failure is a *ProviderError (wrapping ErrProvider)
// whose message names no secret, or wraps ErrMisconfigured or ErrNotOAuth.
func (s *Service) FetchClientCredentials(ctx context.Context, ct *ent.ConnectionType, values map[string]string) (*Token, error) {
	if ct == nil || ct.AuthKind != connectiontype.AuthKindOAUTH2_CLIENT_CREDENTIALS || ct.Oauth2 == nil {
		return nil, fmt.Errorf("%w: not an OAuth 2.0 client credentials type", ErrNotOAuth)
	}
	f, err := s.flowOf(ct, resolveValues(ct, values))
	if err != nil {
		return nil, err
	}
	return s.clientCredentials(ctx, f)
}

// resolveValues fills in defaults and renders template inputs, as the save
// pipeline does; on values already resolved it changes nothing.
func resolveValues(ct *ent.ConnectionType, values map[string]string) map[string]string {
	st := &sdk.ConnectionType{Key: ct.Key}
	for _, in := range ct.Inputs {
		st.Inputs = append(st.Inputs, sdk.Input{Key: in.Key, Type: sdk.InputType(in.Type), Default: in.Default, Template: in.Template})
	}
	out, err := sdk.ResolveValues(st, values)
	if err != nil {
		// flowOf reports what cannot be rendered.
		return values
	}
	return out
}

// StoreToken seals tok as the token of credential credID (of type ct) and
// sets the token columns: expiry, granted scopes, refresh schedule, failure
// count 0, status ACTIVE. db is the caller's transaction client; only the
// token and status columns are written. The caller audits the status change
// and publishes it after its transaction commits, as it does for the save.
func (s *Service) StoreToken(ctx context.Context, db *ent.Client, credID int, ct *ent.ConnectionType, tok *Token) error {
	if tok == nil || tok.AccessToken == "" {
		return fmt.Errorf("storing the token of credential %d: %w: no access token", credID, ErrProvider)
	}
	sealed, err := s.seal(ctx, credID, tok)
	if err != nil {
		return err
	}
	detail := "authorized"
	if ct != nil && ct.AuthKind == connectiontype.AuthKindOAUTH2_CLIENT_CREDENTIALS {
		detail = "token obtained with the client credentials"
	}
	n, err := setToken(db.Credential.Update().Where(credential.ID(credID)), sealed, tok, s.marginOf(ct), s.now()).
		SetStatus(credential.StatusACTIVE).
		SetStatusDetail(detail).
		Save(ctx)
	if err != nil {
		return fmt.Errorf("storing the token of credential %d: %w", credID, err)
	}
	if n == 0 {
		return notFound(credID)
	}
	return nil
}
