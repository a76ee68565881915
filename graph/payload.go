package graph

import (
	"context"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/graph/model"
)

// payloadType is a mutation's payload: it carries userErrors.
type payloadType interface {
	SetUserErrors(ue []*model.UserError)
}

// payload answers a mutation with p: the field problems of err become p's
// userErrors (and a VALIDATION_FAILED or CONFLICT error, see fieldErrors);
// any other error is the answer alone.
func payload[P payloadType](ctx context.Context, p P, err error) (P, error) {
	ue, err := fieldErrors(ctx, err)
	if err != nil {
		var none P
		return none, err
	}
	p.SetUserErrors(ue)
	return p, nil
}

// succeeded answers a mutation whose errors are never the input's: p with
// no userErrors, or err alone.
func succeeded[P payloadType](p P, err error) (P, error) {
	if err != nil {
		var none P
		return none, err
	}
	p.SetUserErrors([]*model.UserError{})
	return p, nil
}

// credentialAfter is the credential a mutation changed, read once the
// change went through; a refused change is passed on as it is.
func (r *Resolver) credentialAfter(ctx context.Context, id int, err error) (*ent.Credential, error) {
	if err != nil {
		return nil, err
	}
	return r.DB.Credential.Get(ctx, id)
}

// nonEmpty is s, or nil when s is empty (a refused mutation shows no
// secret).
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
