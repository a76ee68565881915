package connection

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/plugboard/plugboard/ent"
)

// UpdateOrganizationInput changes an organization's settings; nil fields
// stay as they are.
type UpdateOrganizationInput struct {
	Name                *string
	RedirectAllowlist   []string
	SetAllowlist        bool
	AutoCreateCustomers *bool
	// AllowPrivateNetworks lets the credential proxy reach private
	// addresses.
	AllowPrivateNetworks *bool
}

// MaxAllowlist bounds the redirect allow-list.
const MaxAllowlist = 50

// UpdateOrganization changes the viewer's organization.
func (s *Service) UpdateOrganization(ctx context.Context, in UpdateOrganizationInput) (*ent.Organization, error) {
	v, err := Authorize(ctx, ManageOrganization)
	if err != nil {
		return nil, err
	}
	errs := checkNewName(in.Name)
	if len(in.RedirectAllowlist) > MaxAllowlist {
		errs = append(errs, fieldErr(CodeTooMany, fmt.Sprintf("At most %d redirect URL prefixes.", MaxAllowlist), "redirectAllowlist"))
	}
	for i, raw := range in.RedirectAllowlist {
		if msg := checkAllowlistEntry(raw); msg != "" {
			errs = append(errs, fieldErr(CodeInvalidValue, msg, "redirectAllowlist", fmt.Sprint(i)))
		}
	}
	if len(errs) > 0 {
		return nil, invalid(errs...)
	}
	var org *ent.Organization
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		u := tx.Organization.UpdateOneID(v.OrganizationID)
		if in.Name != nil {
			u.SetName(strings.TrimSpace(*in.Name))
		}
		if in.SetAllowlist {
			u.SetRedirectAllowlist(in.RedirectAllowlist)
		}
		if in.AutoCreateCustomers != nil {
			u.SetAutoCreateCustomers(*in.AutoCreateCustomers)
		}
		if in.AllowPrivateNetworks != nil {
			u.SetAllowPrivateNetworks(*in.AllowPrivateNetworks)
		}
		var err error
		if org, err = u.Save(ctx); err != nil {
			return err
		}
		return s.audit(ctx, tx.Client(), v, auditEntry{action: "organization.updated", message: "organization settings updated"})
	})
	if err != nil {
		return nil, err
	}
	s.orgs.forget(v.OrganizationID)
	return org.Unwrap(), nil
}

// checkAllowlistEntry says what is wrong with a redirect URL prefix, or "".
func checkAllowlistEntry(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return "A redirect prefix is an absolute URL with a host and no user, query or fragment."
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1" || u.Hostname() == "::1"):
		return ""
	}
	return "A redirect prefix uses https (http only for localhost)."
}
