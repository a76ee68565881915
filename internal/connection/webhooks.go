package connection

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/webhookdelivery"
	"github.com/plugboard/plugboard/ent/webhookendpoint"
	"github.com/plugboard/plugboard/internal/egress"
	"github.com/plugboard/plugboard/internal/secrets/sealed"
)

// SecretOverlap is how long a rotated webhook secret still signs.
const SecretOverlap = 24 * time.Hour

// WebhookPolicy is where webhook endpoints may point.
type WebhookPolicy struct {
	// Egress is the address policy the endpoint's host must pass.
	Egress egress.Policy
	// RequireHTTPS refuses http:// endpoints (off in --dev and where
	// loopback receivers are allowed).
	RequireHTTPS bool
}

// WebhookEndpointInput is a new webhook endpoint.
type WebhookEndpointInput struct {
	URL         string
	Events      []string
	Description *string
}

// UpdateWebhookEndpointInput changes an endpoint; nil keeps a field.
// Status ACTIVE re-enables an endpoint plugboard disabled.
type UpdateWebhookEndpointInput struct {
	URL         *string
	Events      []string
	Description *string
	Status      *webhookendpoint.Status
}

// CreateWebhookEndpoint registers an endpoint of the viewer's
// organization. It returns the signing secret ("whsec_..."), shown this
// once.
func (s *Service) CreateWebhookEndpoint(ctx context.Context, in WebhookEndpointInput) (*ent.WebhookEndpoint, string, error) {
	v, err := Authorize(ctx, ManageWebhooks)
	if err != nil {
		return nil, "", err
	}
	if err := s.checkEndpoint(ctx, in.URL, in.Events, true); err != nil {
		return nil, "", err
	}
	secret := newWebhookSecret()
	var out *ent.WebhookEndpoint
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		c := tx.WebhookEndpoint.Create().SetOrganizationID(v.OrganizationID).
			SetURL(in.URL).SetEvents(in.Events).SetSecret([]byte{})
		if in.Description != nil {
			c.SetDescription(*in.Description)
		}
		ep, err := c.Save(ctx)
		if err != nil {
			return err
		}
		box, err := s.Keys.Encrypt(ctx, []byte(secret), sealed.WebhookSecret.AAD(ep.ID))
		if err != nil {
			return err
		}
		if out, err = ep.Update().SetSecret(box).Save(ctx); err != nil {
			return err
		}
		return s.audit(ctx, tx.Client(), v, auditEntry{action: "webhook.endpoint_created",
			message: fmt.Sprintf("webhook endpoint %d created for %s", ep.ID, redactURL(in.URL))})
	})
	if err != nil {
		return nil, "", err
	}
	return out.Unwrap(), secret, nil
}

// UpdateWebhookEndpoint changes an endpoint of the viewer's organization.
func (s *Service) UpdateWebhookEndpoint(ctx context.Context, id int, in UpdateWebhookEndpointInput) (*ent.WebhookEndpoint, error) {
	v, err := Authorize(ctx, ManageWebhooks)
	if err != nil {
		return nil, err
	}
	ep, err := s.endpoint(ctx, id)
	if err != nil {
		return nil, err
	}
	target, events := ep.URL, ep.Events
	if in.URL != nil {
		target = *in.URL
	}
	if in.Events != nil {
		events = in.Events
	}
	if err := s.checkEndpoint(ctx, target, events, in.URL != nil); err != nil {
		return nil, err
	}
	var out *ent.WebhookEndpoint
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		u := tx.WebhookEndpoint.UpdateOneID(ep.ID).SetURL(target).SetEvents(events)
		if in.Description != nil {
			u.SetDescription(*in.Description)
		}
		if in.Status != nil {
			u.SetStatus(*in.Status).SetDisabledReason("").ClearFailingSince()
			if *in.Status == webhookendpoint.StatusDISABLED {
				u.SetDisabledReason("disabled by an admin")
			}
		}
		var err error
		if out, err = u.Save(ctx); err != nil {
			return err
		}
		return s.audit(ctx, tx.Client(), v, auditEntry{action: "webhook.endpoint_updated",
			message: fmt.Sprintf("webhook endpoint %d updated", ep.ID)})
	})
	if err != nil {
		return nil, err
	}
	return out.Unwrap(), nil
}

// DeleteWebhookEndpoint deletes an endpoint and its deliveries; the events
// stay as history.
func (s *Service) DeleteWebhookEndpoint(ctx context.Context, id int) error {
	v, err := Authorize(ctx, ManageWebhooks)
	if err != nil {
		return err
	}
	if _, err := s.endpoint(ctx, id); err != nil {
		return err
	}
	return s.withTx(ctx, func(tx *ent.Tx) error {
		if _, err := tx.WebhookDelivery.Delete().Where(webhookdelivery.EndpointID(id)).Exec(ctx); err != nil {
			return err
		}
		if err := tx.WebhookEndpoint.DeleteOneID(id).Exec(ctx); err != nil {
			return err
		}
		return s.audit(ctx, tx.Client(), v, auditEntry{action: "webhook.endpoint_deleted",
			message: fmt.Sprintf("webhook endpoint %d deleted", id)})
	})
}

// RotateWebhookSecret gives an endpoint a new signing secret, returned this
// once. The old one keeps signing beside it for SecretOverlap, so a
// receiver can switch without dropping a delivery.
func (s *Service) RotateWebhookSecret(ctx context.Context, id int) (*ent.WebhookEndpoint, string, error) {
	v, err := Authorize(ctx, ManageWebhooks)
	if err != nil {
		return nil, "", err
	}
	ep, err := s.endpoint(ctx, id)
	if err != nil {
		return nil, "", err
	}
	old, err := s.Keys.Decrypt(ctx, ep.Secret, sealed.WebhookSecret.AAD(ep.ID))
	if err != nil {
		return nil, "", fmt.Errorf("opening the secret of webhook endpoint %d: %w", ep.ID, err)
	}
	secret := newWebhookSecret()
	cur, err := s.Keys.Encrypt(ctx, []byte(secret), sealed.WebhookSecret.AAD(ep.ID))
	if err != nil {
		return nil, "", err
	}
	prev, err := s.Keys.Encrypt(ctx, old, sealed.WebhookPreviousSecret.AAD(ep.ID))
	if err != nil {
		return nil, "", err
	}
	var out *ent.WebhookEndpoint
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		var err error
		out, err = tx.WebhookEndpoint.UpdateOneID(ep.ID).SetSecret(cur).SetPreviousSecret(prev).
			SetPreviousExpiresAt(s.now().Add(SecretOverlap)).Save(ctx)
		if err != nil {
			return err
		}
		return s.audit(ctx, tx.Client(), v, auditEntry{action: "webhook.secret_rotated",
			message: fmt.Sprintf("signing secret of webhook endpoint %d rotated; the old one signs for 24 h", ep.ID)})
	})
	if err != nil {
		return nil, "", err
	}
	return out.Unwrap(), secret, nil
}

// WebhookEndpoints lists the organization's endpoints, oldest first.
func (s *Service) WebhookEndpoints(ctx context.Context) ([]*ent.WebhookEndpoint, error) {
	if _, err := Authorize(ctx, ReadWebhooks); err != nil {
		return nil, err
	}
	return s.DB.WebhookEndpoint.Query().Order(ent.Asc(webhookendpoint.FieldID)).All(ctx)
}

// WebhookDeliveries lists an endpoint's deliveries, newest first: first of
// them (50 when 0, at most 500).
func (s *Service) WebhookDeliveries(ctx context.Context, endpointID, first int) ([]*ent.WebhookDelivery, error) {
	if _, err := Authorize(ctx, ReadWebhooks); err != nil {
		return nil, err
	}
	if _, err := s.endpoint(ctx, endpointID); err != nil {
		return nil, err
	}
	if first <= 0 {
		first = 50
	}
	first = min(first, 500)
	return s.DB.WebhookDelivery.Query().Where(webhookdelivery.EndpointID(endpointID)).
		Order(ent.Desc(webhookdelivery.FieldID)).Limit(first).All(ctx)
}

// RedeliverWebhook sends a delivery's event to its endpoint again, now,
// with the same webhook-id.
func (s *Service) RedeliverWebhook(ctx context.Context, deliveryID int) (*ent.WebhookDelivery, error) {
	v, err := Authorize(ctx, ManageWebhooks)
	if err != nil {
		return nil, err
	}
	d, err := s.DB.WebhookDelivery.Get(ctx, deliveryID)
	if ent.IsNotFound(err) {
		return nil, notFound("webhook delivery", deliveryID)
	}
	if err != nil {
		return nil, err
	}
	var out *ent.WebhookDelivery
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		now := s.now()
		var err error
		out, err = tx.WebhookDelivery.Create().SetOrganizationID(d.OrganizationID).
			SetEndpointID(d.EndpointID).SetEventID(d.EventID).SetNextAttemptAt(now).
			SetCreatedAt(now).SetUpdatedAt(now).Save(ctx)
		if err != nil {
			return err
		}
		return s.audit(ctx, tx.Client(), v, auditEntry{action: "webhook.redelivered",
			message: fmt.Sprintf("webhook delivery %d sent again as delivery %d", d.ID, out.ID)})
	})
	if err != nil {
		return nil, err
	}
	return out.Unwrap(), nil
}

// ListWebhookEventTypes are the event types an endpoint may subscribe to.
func (s *Service) ListWebhookEventTypes(ctx context.Context) ([]string, error) {
	if _, err := Authorize(ctx, ReadWebhooks); err != nil {
		return nil, err
	}
	return WebhookEventTypes(), nil
}

// endpoint reads an endpoint of the viewer's organization.
func (s *Service) endpoint(ctx context.Context, id int) (*ent.WebhookEndpoint, error) {
	ep, err := s.DB.WebhookEndpoint.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, notFound("webhook endpoint", id)
	}
	return ep, err
}

// checkEndpoint refuses a URL plugboard may not call and event types it
// does not send. The URL's host is resolved and checked only when it
// changes (checkHost).
func (s *Service) checkEndpoint(ctx context.Context, raw string, events []string, checkHost bool) error {
	var errs []FieldError
	if err := s.checkWebhookURL(ctx, raw, checkHost); err != nil {
		errs = append(errs, *err)
	}
	known := WebhookEventTypes()
	if len(events) == 0 {
		errs = append(errs, fieldErr(CodeRequired, "Subscribe to at least one event type.", "events"))
	}
	for _, e := range events {
		if !slices.Contains(known, e) {
			errs = append(errs, fieldErr(CodeInvalidValue,
				fmt.Sprintf("%q is not an event type; see webhookEventTypes.", e), "events"))
		}
	}
	if len(errs) > 0 {
		return invalid(errs...)
	}
	return nil
}

// checkWebhookURL is the URL's share of checkEndpoint.
func (s *Service) checkWebhookURL(ctx context.Context, raw string, checkHost bool) *FieldError {
	bad := func(code, msg string) *FieldError { e := fieldErr(code, msg, "url"); return &e }
	if raw == "" {
		return bad(CodeRequired, "A URL is required.")
	}
	if len(raw) > 2048 {
		return bad(CodeTooLong, "The URL is longer than 2048 characters.")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return bad(CodeInvalidValue, "The URL must be an absolute http:// or https:// URL.")
	}
	if u.User != nil {
		return bad(CodeInvalidValue, "The URL must not carry a user name or password.")
	}
	if u.Scheme == "http" && s.Webhooks.RequireHTTPS {
		return bad(CodeInvalidValue, "The URL must use https://.")
	}
	if !checkHost {
		return nil
	}
	if err := egress.CheckURL(ctx, raw, s.Webhooks.Egress); err != nil {
		var denied *egress.DeniedError
		if errors.As(err, &denied) {
			return bad(CodeInvalidValue, "plugboard may not call this address: "+denied.Reason+".")
		}
		return bad(CodeInvalidValue, "The URL's host does not resolve.")
	}
	return nil
}

// newWebhookSecret is a fresh signing secret: "whsec_" and 32 random bytes
// in base64, as Standard Webhooks libraries read it.
func newWebhookSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// redactURL is u without its query, for the audit log.
func redactURL(raw string) string {
	base, _, _ := strings.Cut(raw, "?")
	return base
}
