package connection

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connection"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/instance"
	"github.com/plugboard/plugboard/ent/webhookdelivery"
	"github.com/plugboard/plugboard/ent/webhookendpoint"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/globalid"
)

// Webhook event types, the ones an endpoint may subscribe to.
const (
	EventCredentialCreated       = "credential.created"
	EventCredentialUpdated       = "credential.updated"
	EventCredentialAuthorized    = "credential.authorized"
	EventCredentialStatusChanged = "credential.status_changed"
	EventCredentialRefreshFailed = "credential.refresh_failed"
	EventCredentialRecovered     = "credential.recovered"
	EventCredentialDeleted       = "credential.deleted"
	EventInstanceConfigured      = "instance.configured"
	EventInstanceDeployed        = "instance.deployed"
)

// WebhookEventTypes are every event type plugboard sends, in the order the
// API lists them.
func WebhookEventTypes() []string {
	return []string{
		EventCredentialCreated, EventCredentialUpdated, EventCredentialAuthorized,
		EventCredentialStatusChanged, EventCredentialRefreshFailed, EventCredentialRecovered,
		EventCredentialDeleted, EventInstanceConfigured, EventInstanceDeployed,
	}
}

// eventTypes are the webhook events an audit entry reports; none for most.
func eventTypes(e auditEntry) []string {
	switch e.action {
	case "credential.saved":
		if e.created {
			return []string{EventCredentialCreated}
		}
		return []string{EventCredentialUpdated}
	case "credential.status_changed":
		if e.to == credential.StatusACTIVE && (e.from == credential.StatusERROR || e.from == credential.StatusFAILED) {
			return []string{EventCredentialStatusChanged, EventCredentialRecovered}
		}
		return []string{EventCredentialStatusChanged}
	case EventCredentialAuthorized, EventCredentialRefreshFailed, EventCredentialDeleted,
		EventInstanceConfigured, EventInstanceDeployed:
		return []string{e.action}
	}
	return nil
}

// webhookBody is what an endpoint receives, after the Standard Webhooks
// convention: the type, when it happened, and its data. data names ids and
// keys, never a value.
type webhookBody struct {
	Type      string       `json:"type"`
	Timestamp time.Time    `json:"timestamp"`
	Data      *webhookData `json:"data"`
}

// webhookData is the subject of an event. Ids are the API's global ids.
type webhookData struct {
	CredentialID       string `json:"credentialId,omitempty"`
	ConnectionID       string `json:"connectionId,omitempty"`
	InstanceID         string `json:"instanceId,omitempty"`
	TypeKey            string `json:"typeKey,omitempty"`
	CustomerExternalID string `json:"customerExternalId,omitempty"`
	From               string `json:"from,omitempty"`
	To                 string `json:"to,omitempty"`
	Detail             string `json:"detail,omitempty"`
}

// writeOutbox writes, in the caller's transaction (db), the webhook events
// entry e reports and one pending delivery of each to every active
// endpoint of the organization that subscribes to it. Entries that report
// no event, and organizations without endpoints, cost nothing more.
func writeOutbox(ctx context.Context, db *ent.Client, at time.Time, e auditEntry) error {
	types := eventTypes(e)
	if len(types) == 0 {
		return nil
	}
	ctx = auth.OrganizationContext(ctx, e.orgID)
	eps, err := db.WebhookEndpoint.Query().
		Where(webhookendpoint.OrganizationID(e.orgID), webhookendpoint.StatusEQ(webhookendpoint.StatusACTIVE)).
		Select(webhookendpoint.FieldID, webhookendpoint.FieldEvents).All(ctx)
	if err != nil || len(eps) == 0 {
		return err
	}
	var data *webhookData
	for _, typ := range types {
		var to []int
		for _, ep := range eps {
			if slices.Contains(ep.Events, typ) {
				to = append(to, ep.ID)
			}
		}
		if len(to) == 0 {
			continue
		}
		if data == nil {
			if data, err = eventData(ctx, db, e); err != nil {
				return fmt.Errorf("webhook event %s: %w", typ, err)
			}
		}
		if err := enqueue(ctx, db, at, e.orgID, typ, data, to); err != nil {
			return err
		}
	}
	return nil
}

// enqueue writes one event and its deliveries to the endpoints to.
func enqueue(ctx context.Context, db *ent.Client, at time.Time, orgID int, typ string, data *webhookData, to []int) error {
	body, err := json.Marshal(webhookBody{Type: typ, Timestamp: at, Data: data})
	if err != nil {
		return err
	}
	ev, err := db.WebhookEvent.Create().SetOrganizationID(orgID).SetMessageID(NewWebhookMessageID()).
		SetType(typ).SetPayload(string(body)).SetCreatedAt(at).Save(ctx)
	if err != nil {
		return fmt.Errorf("writing webhook event %s: %w", typ, err)
	}
	bulk := make([]*ent.WebhookDeliveryCreate, 0, len(to))
	for _, id := range to {
		bulk = append(bulk, db.WebhookDelivery.Create().SetOrganizationID(orgID).
			SetEndpointID(id).SetEventID(ev.ID).SetStatus(webhookdelivery.StatusPENDING).
			SetNextAttemptAt(at).SetCreatedAt(at).SetUpdatedAt(at))
	}
	if err := db.WebhookDelivery.CreateBulk(bulk...).Exec(ctx); err != nil {
		return fmt.Errorf("writing webhook deliveries of %s: %w", typ, err)
	}
	return nil
}

// eventData names the subject of e: its instance, or its credential with
// the connection, type key and customer.
func eventData(ctx context.Context, db *ent.Client, e auditEntry) (*webhookData, error) {
	d := &webhookData{From: string(e.from), To: string(e.to), Detail: e.detail}
	if e.instanceID != 0 {
		inst, err := db.Instance.Query().Where(instance.ID(e.instanceID)).WithCustomer().Only(ctx)
		if err != nil {
			return nil, err
		}
		d.InstanceID, d.CustomerExternalID = globalid.Encode(inst.ID), customerExternalID(inst)
		return d, nil
	}
	cred := e.cred
	if cred == nil {
		var err error
		if cred, err = db.Credential.Get(ctx, e.credentialID); err != nil {
			return nil, err
		}
	}
	d.CredentialID, d.ConnectionID = globalid.Encode(cred.ID), globalid.Encode(cred.ConnectionID)
	conn, err := db.Connection.Query().Where(connection.ID(cred.ConnectionID)).WithType().Only(ctx)
	if err != nil {
		return nil, err
	}
	if conn.Edges.Type != nil {
		d.TypeKey = conn.Edges.Type.Key
	}
	if cred.CustomerID != nil {
		c, err := db.Customer.Get(ctx, *cred.CustomerID)
		if err != nil {
			return nil, err
		}
		d.CustomerExternalID = c.ExternalID
	}
	return d, nil
}

// NewWebhookMessageID is a fresh webhook-id: "msg_" and 26 random
// base32 characters.
func NewWebhookMessageID() string {
	return "msg_" + rand.Text()
}
