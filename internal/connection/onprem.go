package connection

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/onpremresource"
	"github.com/plugboard/plugboard/internal/secrets"
)

// This file holds on-prem resources: services in a customer's private
// network that plugboard reaches through an agent the customer runs next to
// them. The agent dials out to plugboard and authenticates with the
// resource's token (agents.go); a credential bound to a resource reaches its
// target through the tunnel (tunnel.go).
//
// Deleting a resource is refused while a credential is bound to it (IN_USE,
// naming the credentials): a bound credential has no host and port of its
// own, so unbinding it would leave it pointing nowhere.

// agentTokenPrefix starts every agent token, so a secret scanner and a
// person know one when they see it.
const agentTokenPrefix = "pbagent_"

// tokenPrefixLen is how much of a token is kept in clear for display:
// the prefix and four random characters, too few to guess the rest by.
const tokenPrefixLen = len(agentTokenPrefix) + 4

// OnPremResourceInput is a new on-prem resource.
type OnPremResourceInput struct {
	CustomerID int
	Name       string
	// Target is host:port as seen from inside the customer's network.
	Target string
}

// CreateOnPremResource creates an on-prem resource of a customer and
// returns its agent token ("pbagent_..."), shown this once: only its
// SHA-256 is stored.
func (s *Service) CreateOnPremResource(ctx context.Context, in OnPremResourceInput) (*ent.OnPremResource, string, error) {
	v, err := Authorize(ctx, ManageOnPremResources)
	if err != nil {
		return nil, "", err
	}
	if errs := checkOnPremInput(in); len(errs) > 0 {
		return nil, "", invalid(errs...)
	}
	if _, err := s.DB.Customer.Get(ctx, in.CustomerID); err != nil {
		if ent.IsNotFound(err) {
			return nil, "", invalid(fieldErr(CodeNotFound, "No such customer.", "customerID"))
		}
		return nil, "", err
	}
	token, err := secrets.RandomToken(agentTokenPrefix, 32)
	if err != nil {
		return nil, "", err
	}
	var out *ent.OnPremResource
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		var err error
		out, err = tx.OnPremResource.Create().SetOrganizationID(v.OrganizationID).
			SetCustomerID(in.CustomerID).SetName(strings.TrimSpace(in.Name)).SetTarget(in.Target).
			SetTokenHash(secrets.HashToken(token)).SetTokenPrefix(token[:tokenPrefixLen]).Save(ctx)
		if err != nil {
			return err
		}
		return s.audit(ctx, tx.Client(), v, auditEntry{action: "onprem.resource_created",
			message: fmt.Sprintf("on-prem resource %d (%s) created for customer %d, target %s", out.ID, out.Name, in.CustomerID, in.Target)})
	})
	if err != nil {
		return nil, "", err
	}
	return out.Unwrap(), token, nil
}

// RotateOnPremResourceToken gives a resource a new agent token, returned
// this once. The old token is refused from the commit on, and the agent's
// live session (and every stream on it) is cut.
func (s *Service) RotateOnPremResourceToken(ctx context.Context, id int) (*ent.OnPremResource, string, error) {
	v, err := Authorize(ctx, ManageOnPremResources)
	if err != nil {
		return nil, "", err
	}
	r, err := s.onPremResource(ctx, id)
	if err != nil {
		return nil, "", err
	}
	token, err := secrets.RandomToken(agentTokenPrefix, 32)
	if err != nil {
		return nil, "", err
	}
	var out *ent.OnPremResource
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		var err error
		out, err = tx.OnPremResource.UpdateOneID(r.ID).
			SetTokenHash(secrets.HashToken(token)).SetTokenPrefix(token[:tokenPrefixLen]).Save(ctx)
		if err != nil {
			return err
		}
		return s.audit(ctx, tx.Client(), v, auditEntry{action: "onprem.token_rotated",
			message: fmt.Sprintf("agent token of on-prem resource %d (%s) rotated; the old one is refused", r.ID, r.Name)})
	})
	if err != nil {
		return nil, "", err
	}
	s.cutTunnel(r.ID)
	return out.Unwrap(), token, nil
}

// DeleteOnPremResource deletes a resource and cuts its tunnel at once. It is
// refused (IN_USE) while a credential is bound to it.
func (s *Service) DeleteOnPremResource(ctx context.Context, id int) error {
	v, err := Authorize(ctx, ManageOnPremResources)
	if err != nil {
		return err
	}
	r, err := s.onPremResource(ctx, id)
	if err != nil {
		return err
	}
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		bound, err := tx.Credential.Query().Where(credential.OnPremResourceID(r.ID)).
			Order(credential.ByID()).IDs(ctx)
		if err != nil {
			return err
		}
		if len(bound) > 0 {
			return invalid(fieldErr(CodeInUse, fmt.Sprintf(
				"The resource is in use by %d credential(s) (%s); bind them elsewhere or delete them first.",
				len(bound), credentialList(bound)), "id"))
		}
		if err := tx.OnPremResource.DeleteOneID(r.ID).Exec(ctx); err != nil {
			return err
		}
		return s.audit(ctx, tx.Client(), v, auditEntry{action: "onprem.resource_deleted",
			message: fmt.Sprintf("on-prem resource %d (%s) deleted; its tunnel is cut", r.ID, r.Name)})
	})
	if err != nil {
		return err
	}
	s.cutTunnel(r.ID)
	return nil
}

// OnPremResources lists a customer's on-prem resources, oldest first. A
// customer's user sees only its own customer's (the tenant filter). A
// resource whose agent was not seen for three heartbeats is DISCONNECTED,
// whatever its row says.
func (s *Service) OnPremResources(ctx context.Context, customerID int) ([]*ent.OnPremResource, error) {
	if _, err := Authorize(ctx, ReadOnPremResources); err != nil {
		return nil, err
	}
	rs, err := s.DB.OnPremResource.Query().Where(onpremresource.CustomerID(customerID)).
		Order(ent.Asc(onpremresource.FieldID)).All(ctx)
	for _, r := range rs {
		s.showLiveness(r)
	}
	return rs, err
}

// onPremResource reads a resource the viewer may see.
func (s *Service) onPremResource(ctx context.Context, id int) (*ent.OnPremResource, error) {
	r, err := s.DB.OnPremResource.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, notFound("on-prem resource", id)
	}
	return r, err
}

// checkOnPremInput checks a new resource's name and target.
func checkOnPremInput(in OnPremResourceInput) []FieldError {
	var errs []FieldError
	name := strings.TrimSpace(in.Name)
	switch {
	case name == "":
		errs = append(errs, fieldErr(CodeRequired, "A name is required.", "name"))
	case len(name) > 200:
		errs = append(errs, fieldErr(CodeTooLong, "A name is at most 200 characters.", "name"))
	}
	if msg := checkTarget(in.Target); msg != "" {
		errs = append(errs, fieldErr(CodeInvalidValue, msg, "target"))
	}
	return errs
}

// checkTarget says what is wrong with a target, "" when it is a host:port.
func checkTarget(target string) string {
	const want = "The target is host:port as seen from inside the customer's network, such as db.internal:5432."
	if target == "" || len(target) > 300 {
		return want
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil || host == "" || strings.ContainsAny(host, "/ @?#") {
		return want
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return "The target's port must be a number between 1 and 65535."
	}
	return ""
}

// credentialList names credential ids for a message.
func credentialList(ids []int) string {
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		parts = append(parts, "credential "+strconv.Itoa(id))
	}
	return strings.Join(parts, ", ")
}
