package connection

import (
	"context"
	"maps"
	"slices"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/onpremresource"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection/scopes"
	"github.com/plugboard/plugboard/internal/oauth"
	"github.com/plugboard/plugboard/internal/onprem"
	"github.com/plugboard/plugboard/plugins/sdk"
)

// This file holds a credential's binding to an on-prem resource: a bound
// credential's onPremControlled inputs (host, port) are not its own but
// the local address of a forwarder over the resource's tunnel, made for
// each live test (and for the runtime).

// onPrem decides the save's binding: the one the save asks for, checked,
// or the stored one. A bound credential's onPremControlled inputs are not
// the holder's to fill: the save refuses them and the checks skip them.
func (sv *save) onPrem(ctx context.Context) error {
	if ex := sv.existing; ex != nil && ex.OnPremResourceID != nil {
		sv.bind = *ex.OnPremResourceID
	}
	if id := sv.in.OnPremResourceID; id != 0 {
		if err := sv.svc.checkBinding(ctx, sv.conn, sv.ct, sv.h.customerID, id); err != nil {
			return err
		}
		if sv.verify {
			return invalid(fieldErr(CodeNotSupported,
				"Bind a credential to an on-prem resource with a save without verify.", "onPremResourceID"))
		}
		sv.bind = id
	}
	if sv.bind == 0 {
		return nil
	}
	keys := onPremKeys(sv.ct.Inputs)
	for _, val := range sv.in.Values {
		if keys[val.Key] {
			return invalid(fieldErr(CodeNotSupported,
				"The credential goes through the customer's on-prem agent: plugboard sets "+val.Key+" itself.", "values", val.Key))
		}
	}
	if sv.skip == nil {
		sv.skip = map[string]bool{}
	}
	maps.Copy(sv.skip, keys)
	return nil
}

// checkBinding checks that a credential of conn, held for customerID, may
// be bound to resource id: its scope is one the customer fills, its type
// has onPremControlled inputs, and the resource is the customer's (another
// customer's is not found).
func (s *Service) checkBinding(ctx context.Context, conn *ent.Connection, ct *ent.ConnectionType, customerID, id int) error {
	const field = "onPremResourceID"
	if !scopes.Of(conn.Scope).OnPrem {
		return invalid(fieldErr(CodeNotSupported,
			"Only the credentials a customer fills (customer- and integration-scoped) go through the customer's on-prem agent.", field))
	}
	if len(onPremKeys(ct.Inputs)) == 0 {
		return invalid(fieldErr(CodeNotSupported,
			"The connection type "+ct.Key+" has no host and port an on-prem agent can stand for (no onPremControlled inputs).", field))
	}
	r, err := s.DB.OnPremResource.Get(ctx, id)
	if ent.IsNotFound(err) || (err == nil && r.CustomerID != customerID) {
		return notFound("on-prem resource", id)
	}
	return err
}

// testThrough runs the plugin's live test of resolved values; a credential
// bound to resourceID is tested through a forwarder over its tunnel,
// closed when the test ends.
func (s *Service) testThrough(ctx context.Context, ct *ent.ConnectionType, resolved map[string]string, tok *oauth.Token, resourceID int, info onprem.StreamInfo) (*sdk.TestResponse, error) {
	if resourceID == 0 {
		return s.pluginTest(ctx, ct, resolved, tok)
	}
	info.Purpose = "test"
	fwd, done, err := s.forwardValues(ctx, ct, resourceID, resolved, info)
	if err != nil {
		return nil, err
	}
	defer done()
	return s.pluginTest(ctx, ct, fwd, tok)
}

// boundTo is the resource a credential is bound to, 0 for none.
func boundTo(c *ent.Credential) int {
	if c == nil || c.OnPremResourceID == nil {
		return 0
	}
	return *c.OnPremResourceID
}

// actorOf is the actor of ctx's viewer, "" without one.
func actorOf(ctx context.Context) string {
	if v := auth.FromContext(ctx); v != nil {
		return v.Actor
	}
	return ""
}

// wizardOnPrem names, on each slot whose credential is bound, the
// resource it goes through, read in one statement, and drops the
// onPremControlled inputs from its form: the customer never types them.
func (s *Service) wizardOnPrem(ctx context.Context, w *Wizard) error {
	var ids []int
	for _, sl := range w.Slots {
		if id := boundTo(sl.Credential); id != 0 {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rs, err := s.DB.OnPremResource.Query().Where(onpremresource.IDIn(ids...)).All(ctx)
	if err != nil {
		return err
	}
	byID := make(map[int]*ent.OnPremResource, len(rs))
	for _, r := range rs {
		byID[r.ID] = r
	}
	for _, sl := range w.Slots {
		r := byID[boundTo(sl.Credential)]
		if r == nil {
			continue
		}
		s.showLiveness(r)
		sl.OnPrem = r
		keys := onPremKeys(sl.Type.Inputs)
		sl.Fields = slices.DeleteFunc(sl.Fields, func(f WizardField) bool { return keys[f.Input.Key] })
	}
	return nil
}
