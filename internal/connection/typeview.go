package connection

import (
	"context"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/internal/auth"
)

// CustomerView reports whether the viewer of ctx sees the customers' view
// of the catalog: a customer's user does; admins and runtimes see it all.
func CustomerView(ctx context.Context) bool {
	return customerBound(auth.FromContext(ctx))
}

// TypeInputs returns the inputs of ct the viewer of ctx sees: for a
// customer's user only those shown to customers, so none of the
// organization's app settings (client ids, authorize URLs, scopes) nor
// their defaults; for anyone else every declared input.
func TypeInputs(ctx context.Context, ct *ent.ConnectionType) []schematype.Input {
	if !CustomerView(ctx) {
		return ct.Inputs
	}
	out := make([]schematype.Input, 0, len(ct.Inputs))
	for _, in := range ct.Inputs {
		if in.Shown {
			out = append(out, in)
		}
	}
	return out
}

// TypeOAuth2 returns the OAuth 2.0 spec of ct for the viewer of ctx: none
// for a customer's user. The spec is the vendor's app settings (endpoints,
// scopes, which inputs hold the client); a customer connects through the
// wizard's OAUTH_CONNECT action and startOAuth2, which need none of it.
func TypeOAuth2(ctx context.Context, ct *ent.ConnectionType) *schematype.OAuth2Spec {
	if CustomerView(ctx) {
		return nil
	}
	return ct.Oauth2
}
