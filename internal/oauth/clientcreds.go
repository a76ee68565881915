package oauth

import (
	"context"
	"fmt"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connectiontype"
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
	f, err := s.FlowOf(ct, resolveValues(ct, values))
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
