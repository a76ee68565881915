package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connection"
	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/graph"
	"github.com/plugboard/plugboard/internal/auth"
	conn "github.com/plugboard/plugboard/internal/connection"
	"github.com/plugboard/plugboard/internal/globalid"
	"github.com/plugboard/plugboard/internal/server"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

// Values seeded into the wizard's credentials. The secret ones must never
// come back; the hidden plain ones must never reach a customer.
const (
	wizAsanaToken   = "2/1200wizard7f3a9c/1201:WIZARDdeadbeef0042"
	wizAsanaToken2  = "2/1200wizard7f3a9d/1202:WIZARDdeadbeef0043"
	wizPgPassword   = "pg-Secret-wizard-77"
	wizSlackClient  = "slack-client-id-4711"
	wizUserBaseURL  = "https://asana-proxy.example.com/api/1.0"
	wizardQueryText = `query Wizard($id: ID!) { configWizard(instanceID: $id) {
  instance { id name }
  pages { key title elements {
    slotKey label connectionID scope typeKey typeLabel iconURL authKind action
    credential { id status values { key value secret isSet } }
    status connected connectLabel
    fields { key label type required default example placeholder description secret
      options { value label } pattern collection template value isSet updatedAt }
    existing { id status values { key value isSet } }
    errors { field code message }
  } }
} }`
)

// wizardSeed is an integration with one slot of each scope, instances of
// customer A1 and the credentials behind them.
type wizardSeed struct {
	org                     *ent.Organization
	a1, a2                  *ent.Customer
	user                    *ent.User
	inst1, inst2            *ent.Instance
	asanaCust, asanaOther   *ent.Connection
	slackInt, pgGlobal      *ent.Connection
	asanaOrgCust, asanaUser *ent.Connection
	// Credentials.
	a1Other, a2Other, slackInst, pgOrg, a1OrgCust, userCred *ent.Credential
}

func adminContext(org *ent.Organization) context.Context {
	return auth.NewContext(context.Background(), &auth.Viewer{Role: auth.RoleOrgAdmin, OrganizationID: org.ID, Actor: "test"})
}

// seedWizard seeds the wizard's data with the ent client as plugboard and
// the values of customer and organization credentials through the save
// pipeline (real plugins).
func seedWizard(t testing.TB, app *server.App, slots int) *wizardSeed {
	t.Helper()
	db := app.Store.Client
	sys := auth.SystemContext(context.Background())
	org, err := server.EnsureOrganization(sys, db, server.DefaultOrgSlug)
	if err != nil {
		t.Fatal(err)
	}
	admin := adminContext(org)
	s := &wizardSeed{org: org}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	typ := func(key string) *ent.ConnectionType {
		ct, err := db.ConnectionType.Query().Where(connectiontype.Key(key)).Only(sys)
		must(err)
		return ct
	}
	asana, slack, pg := typ("asana.apiKey"), typ("slack.oauth2"), typ("postgres.basic")
	s.a1, err = db.Customer.Create().SetOrganizationID(org.ID).SetExternalID("a1").SetName("A1").Save(sys)
	must(err)
	s.a2, err = db.Customer.Create().SetOrganizationID(org.ID).SetExternalID("a2").SetName("A2").Save(sys)
	must(err)
	s.user, err = db.User.Create().SetOrganizationID(org.ID).SetCustomerID(s.a1.ID).SetExternalID("u1").SetEmail("u1@a1.example").Save(sys)
	must(err)
	mkConn := func(ct *ent.ConnectionType, key string, scope connection.Scope, settings map[string]schematype.InputSetting) *ent.Connection {
		c, err := db.Connection.Create().SetOrganizationID(org.ID).SetTypeID(ct.ID).SetStableKey(key).
			SetName(key).SetScope(scope).SetInputSettings(settings).Save(sys)
		must(err)
		c.Edges.Type = ct
		return c
	}
	hide := false
	s.asanaCust = mkConn(asana, "asana-customer", connection.ScopeCUSTOMER, nil)
	s.asanaOther = mkConn(asana, "asana-other", connection.ScopeCUSTOMER, nil)
	// A connection may hide an input from customers (the Slack plugin
	// already hides its signing secret; the setting repeats it).
	s.slackInt = mkConn(slack, "slack-integration", connection.ScopeINTEGRATION,
		map[string]schematype.InputSetting{"signingSecret": {Shown: &hide}})
	s.pgGlobal = mkConn(pg, "pg-global", connection.ScopeORGANIZATION_GLOBAL, nil)
	s.asanaOrgCust = mkConn(asana, "asana-orgcust", connection.ScopeORGANIZATION_CUSTOMER, nil)
	s.asanaUser = mkConn(asana, "asana-user", connection.ScopeUSER, nil)

	integ, err := db.Integration.Create().SetOrganizationID(org.ID).SetKey("wizard").SetName("Wizard").Save(sys)
	must(err)
	all := []struct {
		key, label string
		c          *ent.Connection
	}{
		{"asana", "Asana", s.asanaCust},
		{"slack", "Slack", s.slackInt},
		{"warehouse", "Warehouse", s.pgGlobal},
		{"vendorAsana", "Vendor Asana", s.asanaOrgCust},
		{"myAsana", "My Asana", s.asanaUser},
	}
	// Created last to first: the wizard orders by position, not by id.
	slotRows := make([]*ent.ConnectionSlot, slots)
	for i := slots - 1; i >= 0; i-- {
		sl := all[i]
		slotRows[i], err = db.ConnectionSlot.Create().SetOrganizationID(org.ID).SetIntegrationID(integ.ID).
			SetKey(sl.key).SetLabel(sl.label).SetPosition(i).SetConnectionID(sl.c.ID).Save(sys)
		must(err)
	}
	s.inst1, err = db.Instance.Create().SetOrganizationID(org.ID).SetIntegrationID(integ.ID).SetCustomerID(s.a1.ID).SetName("A1 wizard").Save(sys)
	must(err)
	s.inst2, err = db.Instance.Create().SetOrganizationID(org.ID).SetIntegrationID(integ.ID).SetCustomerID(s.a1.ID).SetName("A1 wizard, bound").Save(sys)
	must(err)

	save := func(c *ent.Connection, customerID int, vals map[string]string) *ent.Credential {
		t.Helper()
		in := conn.SaveCredentialInput{ConnectionID: c.ID, CustomerID: customerID}
		keys := make([]string, 0, len(vals))
		for k := range vals {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v := vals[k]
			in.Values = append(in.Values, conn.ValueInput{Key: k, Value: &v})
		}
		cred, _, err := app.Service.SaveCredential(admin, in)
		must(err)
		return cred
	}
	// A1's and A2's reusable Asana credentials on another connection.
	s.a1Other = save(s.asanaOther, s.a1.ID, map[string]string{"apiKey": wizAsanaToken})
	s.a2Other = save(s.asanaOther, s.a2.ID, map[string]string{"apiKey": wizAsanaToken2})
	// The organization's PostgreSQL.
	s.pgOrg = save(s.pgGlobal, 0, map[string]string{"host": "db.example.com", "database": "app", "user": "svc", "password": wizPgPassword})
	// The organization's Asana key for customer A1.
	s.a1OrgCust = save(s.asanaOrgCust, s.a1.ID, map[string]string{"apiKey": wizAsanaToken})

	// Instance and user credentials: written directly (their save path is
	// another change).
	now := time.Now().UTC()
	expires := now.Add(time.Hour)
	s.slackInst, err = db.Credential.Create().SetOrganizationID(org.ID).SetConnectionID(s.slackInt.ID).
		SetHolder(credential.HolderINSTANCE).SetHolderKey(fmt.Sprintf("instance:%d", s.inst1.ID)).SetInstanceID(s.inst1.ID).
		SetInputs(map[string]string{"clientId": wizSlackClient}).
		SetSecretMeta(map[string]schematype.SecretMeta{"clientSecret": {UpdatedAt: now.UnixMilli()}}).
		SetToken([]byte("sealed-token-bytes")).SetTokenExpiresAt(expires).
		SetStatus(credential.StatusACTIVE).Save(sys)
	must(err)
	s.userCred, err = db.Credential.Create().SetOrganizationID(org.ID).SetConnectionID(s.asanaUser.ID).
		SetHolder(credential.HolderUSER).SetHolderKey(fmt.Sprintf("user:%d", s.user.ID)).SetUserID(s.user.ID).
		SetInputs(map[string]string{"baseUrl": wizUserBaseURL}).
		SetSecretMeta(map[string]schematype.SecretMeta{"apiKey": {UpdatedAt: now.UnixMilli()}}).
		SetStatus(credential.StatusACTIVE).Save(sys)
	must(err)

	// inst2 binds its Asana slot to A1's reusable credential.
	must(db.InstanceBinding.Create().SetOrganizationID(org.ID).SetInstanceID(s.inst2.ID).
		SetSlotID(slotRows[0].ID).SetCredentialID(s.a1Other.ID).Exec(sys))

	// A failed save of A1's reusable credential: its field errors are
	// recorded on the credential for the wizard.
	bad := "Bearer nope"
	_, _, err = app.Service.SaveCredential(admin, conn.SaveCredentialInput{
		ConnectionID: s.asanaOther.ID, CustomerID: s.a1.ID,
		Values: []conn.ValueInput{{Key: "apiKey", Value: &bad}},
	})
	var ve *conn.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("the bad save: %v", err)
	}
	lastErrs := []schematype.FieldError{}
	for _, f := range ve.Fields {
		lastErrs = append(lastErrs, schematype.FieldError{Field: f.Field, Code: f.Code, Message: f.Message})
	}
	// And one about a hidden input, which only an admin may see.
	lastErrs = append(lastErrs, schematype.FieldError{Field: []string{"values", "baseUrl"}, Code: "INVALID_VALUE", Message: "The proxy did not answer."})
	must(db.Credential.UpdateOneID(s.a1Other.ID).SetLastErrors(lastErrs).Exec(sys))
	return s
}

// wizardElem is one decoded wizard element.
type wizardElem struct {
	SlotKey      string  `json:"slotKey"`
	Label        string  `json:"label"`
	ConnectionID string  `json:"connectionID"`
	Scope        string  `json:"scope"`
	TypeKey      string  `json:"typeKey"`
	TypeLabel    string  `json:"typeLabel"`
	IconURL      *string `json:"iconURL"`
	AuthKind     string  `json:"authKind"`
	Action       string  `json:"action"`
	Credential   *struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Values []struct {
			Key   string  `json:"key"`
			Value *string `json:"value"`
			IsSet bool    `json:"isSet"`
		} `json:"values"`
	} `json:"credential"`
	Status       *string `json:"status"`
	Connected    bool    `json:"connected"`
	ConnectLabel *string `json:"connectLabel"`
	Fields       []struct {
		Key         string  `json:"key"`
		Label       string  `json:"label"`
		Type        string  `json:"type"`
		Required    bool    `json:"required"`
		Default     *string `json:"default"`
		Secret      bool    `json:"secret"`
		Options     []any   `json:"options"`
		Pattern     *string `json:"pattern"`
		Collection  string  `json:"collection"`
		Value       *string `json:"value"`
		IsSet       bool    `json:"isSet"`
		UpdatedAt   *string `json:"updatedAt"`
		Placeholder *string `json:"placeholder"`
	} `json:"fields"`
	Existing []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Values []struct {
			Key   string  `json:"key"`
			Value *string `json:"value"`
			IsSet bool    `json:"isSet"`
		} `json:"values"`
	} `json:"existing"`
	Errors []struct {
		Field   []string `json:"field"`
		Code    string   `json:"code"`
		Message string   `json:"message"`
	} `json:"errors"`
}

type wizardResp struct {
	Data struct {
		ConfigWizard *struct {
			Instance struct{ ID string } `json:"instance"`
			Pages    []struct {
				Key      string       `json:"key"`
				Title    string       `json:"title"`
				Elements []wizardElem `json:"elements"`
			} `json:"pages"`
		} `json:"configWizard"`
	} `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// summary is a wizard element in one comparable shape: action, status,
// connection state, credential, existing credentials, every field with
// its attributes and value, and the errors.
func (e wizardElem) summary() []string {
	str := func(p *string) string {
		if p == nil {
			return "null"
		}
		return *p
	}
	out := []string{
		"slot=" + e.SlotKey + " scope=" + e.Scope + " type=" + e.TypeKey + " auth=" + e.AuthKind,
		"action=" + e.Action + " status=" + str(e.Status) + fmt.Sprintf(" connected=%v", e.Connected) + " connectLabel=" + str(e.ConnectLabel),
	}
	if e.Credential == nil {
		out = append(out, "credential=null")
	} else {
		vals := []string{}
		for _, v := range e.Credential.Values {
			vals = append(vals, fmt.Sprintf("%s=%s/%v", v.Key, str(v.Value), v.IsSet))
		}
		out = append(out, "credential="+e.Credential.Status+" values="+strings.Join(vals, ","))
	}
	for _, x := range e.Existing {
		out = append(out, "existing="+x.ID+" "+x.Status+fmt.Sprintf(" values=%d", len(x.Values)))
	}
	for _, f := range e.Fields {
		up := "-"
		if f.UpdatedAt != nil {
			up = "t"
		}
		out = append(out, fmt.Sprintf("field %s %s required=%v secret=%v default=%s options=%d collection=%s value=%s isSet=%v updatedAt=%s",
			f.Key, f.Type, f.Required, f.Secret, str(f.Default), len(f.Options), f.Collection, str(f.Value), f.IsSet, up))
	}
	for _, er := range e.Errors {
		out = append(out, "error "+strings.Join(er.Field, ".")+" "+er.Code)
	}
	return out
}

// customerHandler is plugboard's GraphQL handler with the given viewer
// put into every request, as the embedding tokens will.
func customerHandler(app *server.App, v *auth.Viewer) http.Handler {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := server.NewGraphQLHandler(graph.NewSchema(&graph.Resolver{DB: app.Store.Client, Connections: app.Service}), quiet, nil)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), v)))
	})
}

// wizardBodies collects every configWizard response of a test, to look for
// leaked secrets in.
var wizardBodies struct {
	sync.Mutex
	all []string
}

func queryWizard(t *testing.T, h http.Handler, url, token string, instanceID int) (wizardResp, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": wizardQueryText, "variables": map[string]any{"id": globalid.Encode(instanceID)}})
	var raw []byte
	if h != nil {
		req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		raw = rec.Body.Bytes()
	} else {
		_, b, err := post(http.DefaultClient, url, token, body)
		if err != nil {
			t.Fatal(err)
		}
		raw = b
	}
	wizardBodies.Lock()
	wizardBodies.all = append(wizardBodies.all, string(raw))
	wizardBodies.Unlock()
	var r wizardResp
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("not JSON: %s", raw)
	}
	return r, string(raw)
}

func wizardElems(t *testing.T, r wizardResp, raw string) []wizardElem {
	t.Helper()
	if len(r.Errors) > 0 || r.Data.ConfigWizard == nil {
		t.Fatalf("configWizard failed: %s", raw)
	}
	w := r.Data.ConfigWizard
	if len(w.Pages) != 1 || w.Pages[0].Key != "connections" || w.Pages[0].Title != "Connections" {
		t.Fatalf("pages: %s", raw)
	}
	return w.Pages[0].Elements
}

func checkElems(t *testing.T, who string, got []wizardElem, want [][]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d elements, want %d", who, len(got), len(want))
	}
	for i := range want {
		g := got[i].summary()
		if !slices.Equal(g, want[i]) {
			t.Errorf("%s: element %d (%s):\n got: %s\nwant: %s", who, i, got[i].SlotKey,
				strings.Join(g, "\n      "), strings.Join(want[i], "\n      "))
		}
	}
}

func gid(id int) string { return globalid.Encode(id) }

const (
	asanaKeyField   = "field apiKey PASSWORD required=true secret=true default=null options=0 collection=NONE value=null"
	asanaURLField   = "field baseUrl URL required=false secret=false default=https://app.asana.com/api/1.0 options=0 collection=NONE"
	slackURLFields  = "field authorizeUrl URL required=false secret=false default=https://slack.com/oauth/v2/authorize options=0 collection=NONE value=null isSet=false updatedAt=-"
	wizardIntroSlot = "slot=asana scope=CUSTOMER type=asana.apiKey auth=API_KEY"
)

func TestConfigWizard(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana", "slack", "postgres"}}, func(t *testing.T, env *servertest.Env) {
		s := seedWizard(t, env.App, 5)
		url := env.URL + "/graphql"

		// --- The admin's view of instance 1.
		r, raw := queryWizard(t, nil, url, env.AdminToken, s.inst1.ID)
		elems := wizardElems(t, r, raw)
		if r.Data.ConfigWizard.Instance.ID != gid(s.inst1.ID) {
			t.Errorf("instance id: %s", raw)
		}
		e0 := elems[0]
		if e0.Label != "Asana" || e0.ConnectionID != gid(s.asanaCust.ID) || e0.TypeLabel != "Asana personal access token" ||
			e0.IconURL == nil || *e0.IconURL != "/catalog/icons/asana.apiKey.svg" {
			t.Errorf("asana element: %+v", e0)
		}
		checkElems(t, "admin/inst1", elems, [][]string{
			{
				wizardIntroSlot,
				"action=SELECT_EXISTING status=null connected=false connectLabel=null",
				"credential=null",
				"existing=" + gid(s.a1Other.ID) + " ACTIVE values=2", // the keys, no value (checked below)
				asanaKeyField + " isSet=false updatedAt=-",
				asanaURLField + " value=null isSet=false updatedAt=-",
			},
			{
				"slot=slack scope=INTEGRATION type=slack.oauth2 auth=OAUTH2_AUTHORIZATION_CODE",
				"action=OAUTH_CONNECT status=ACTIVE connected=true connectLabel=Connect Slack",
				"credential=ACTIVE values=authorizeUrl=null/false,tokenUrl=null/false,revokeUrl=null/false,scopes=null/false,clientId=" + wizSlackClient + "/true,clientSecret=null/true,signingSecret=null/false,apiBaseUrl=null/false",
				slackURLFields,
				"field tokenUrl URL required=false secret=false default=https://slack.com/api/oauth.v2.access options=0 collection=NONE value=null isSet=false updatedAt=-",
				"field revokeUrl URL required=false secret=false default=https://slack.com/api/auth.revoke options=0 collection=NONE value=null isSet=false updatedAt=-",
				"field scopes STRING required=false secret=false default=chat:write,channels:read options=0 collection=NONE value=null isSet=false updatedAt=-",
				"field clientId STRING required=true secret=false default=null options=0 collection=NONE value=" + wizSlackClient + " isSet=true updatedAt=-",
				"field clientSecret PASSWORD required=true secret=true default=null options=0 collection=NONE value=null isSet=true updatedAt=t",
				"field signingSecret PASSWORD required=false secret=true default=null options=0 collection=NONE value=null isSet=false updatedAt=-",
				// The base URL the credential proxy calls (protocol 1.1).
				"field apiBaseUrl URL required=false secret=false default=https://slack.com/api options=0 collection=NONE value=null isSet=false updatedAt=-",
			},
			{
				"slot=warehouse scope=ORGANIZATION_GLOBAL type=postgres.basic auth=BASIC",
				"action=MANAGED_BY_ORG status=ACTIVE connected=false connectLabel=null",
				"credential=ACTIVE values=host=db.example.com/true,port=null/false,database=app/true,user=svc/true,password=null/true,sslmode=null/false",
			},
			{
				"slot=vendorAsana scope=ORGANIZATION_CUSTOMER type=asana.apiKey auth=API_KEY",
				"action=MANAGED_BY_ORG status=ACTIVE connected=false connectLabel=null",
				"credential=ACTIVE values=apiKey=null/true,baseUrl=null/false",
			},
			{
				"slot=myAsana scope=USER type=asana.apiKey auth=API_KEY",
				"action=FORM status=null connected=false connectLabel=null",
				"credential=null",
				asanaKeyField + " isSet=false updatedAt=-",
				asanaURLField + " value=null isSet=false updatedAt=-",
			},
		})
		for _, x := range elems[0].Existing {
			for _, v := range x.Values {
				if v.Value != nil || v.IsSet {
					t.Errorf("an existing credential carries a value: %+v", x)
				}
			}
		}

		// --- The admin's view of instance 2: the bound credential with the
		// errors of its failed save.
		r, raw = queryWizard(t, nil, url, env.AdminToken, s.inst2.ID)
		elems = wizardElems(t, r, raw)
		checkElems(t, "admin/inst2", elems[:1], [][]string{{
			wizardIntroSlot,
			"action=FORM status=ACTIVE connected=false connectLabel=null",
			"credential=ACTIVE values=apiKey=null/true,baseUrl=null/false",
			asanaKeyField + " isSet=true updatedAt=t",
			asanaURLField + " value=null isSet=false updatedAt=-",
			"error values.apiKey INVALID_VALUE", // the host checks the token: Asana never sees it
			"error values.baseUrl INVALID_VALUE",
		}})
		if msg := elems[0].Errors[0].Message; msg == "" {
			t.Errorf("the error message: %q", msg)
		}

		// --- Customer A1's user: only what customers see.
		a1 := &auth.Viewer{Role: auth.RoleCustomerUser, OrganizationID: s.org.ID, CustomerID: s.a1.ID, UserID: s.user.ID, Actor: "user:test"}
		h := customerHandler(env.App, a1)
		r, raw = queryWizard(t, h, "", "", s.inst1.ID)
		customerBodies := raw
		elems = wizardElems(t, r, raw)
		checkElems(t, "customer/inst1", elems, [][]string{
			{
				wizardIntroSlot,
				"action=SELECT_EXISTING status=null connected=false connectLabel=null",
				"credential=null",
				"existing=" + gid(s.a1Other.ID) + " ACTIVE values=1",
				asanaKeyField + " isSet=false updatedAt=-",
			},
			{
				"slot=slack scope=INTEGRATION type=slack.oauth2 auth=OAUTH2_AUTHORIZATION_CODE",
				"action=OAUTH_CONNECT status=ACTIVE connected=true connectLabel=Connect Slack",
				"credential=ACTIVE values=",
			},
			{
				"slot=warehouse scope=ORGANIZATION_GLOBAL type=postgres.basic auth=BASIC",
				"action=MANAGED_BY_ORG status=ACTIVE connected=false connectLabel=null",
				"credential=null",
			},
			{
				"slot=vendorAsana scope=ORGANIZATION_CUSTOMER type=asana.apiKey auth=API_KEY",
				"action=MANAGED_BY_ORG status=ACTIVE connected=false connectLabel=null",
				"credential=null",
			},
			{
				"slot=myAsana scope=USER type=asana.apiKey auth=API_KEY",
				"action=FORM status=ACTIVE connected=false connectLabel=null",
				"credential=ACTIVE values=apiKey=null/true",
				asanaKeyField + " isSet=true updatedAt=t",
			},
		})
		r, raw = queryWizard(t, h, "", "", s.inst2.ID)
		customerBodies += raw
		elems = wizardElems(t, r, raw)
		checkElems(t, "customer/inst2", elems[:1], [][]string{{
			wizardIntroSlot,
			"action=FORM status=ACTIVE connected=false connectLabel=null",
			"credential=ACTIVE values=apiKey=null/true",
			asanaKeyField + " isSet=true updatedAt=t",
			"error values.apiKey INVALID_VALUE", // the host checks the token: Asana never sees it
		}})
		// Hidden inputs and their values never reach the customer.
		for _, hidden := range []string{"authorizeUrl", "tokenUrl", "revokeUrl", "clientId", "clientSecret", "baseUrl",
			"signingSecret", wizSlackClient, wizUserBaseURL, "db.example.com", "The proxy did not answer"} {
			if strings.Contains(customerBodies, hidden) {
				t.Errorf("the customer's wizard shows %q", hidden)
			}
		}

		// A user without the USER slot's credential sees an empty form.
		other := &auth.Viewer{Role: auth.RoleCustomerUser, OrganizationID: s.org.ID, CustomerID: s.a1.ID, UserID: s.user.ID + 1000, Actor: "user:other"}
		r, raw = queryWizard(t, customerHandler(env.App, other), "", "", s.inst1.ID)
		elems = wizardElems(t, r, raw)
		checkElems(t, "other user/inst1", elems[4:], [][]string{{
			"slot=myAsana scope=USER type=asana.apiKey auth=API_KEY",
			"action=FORM status=null connected=false connectLabel=null",
			"credential=null",
			asanaKeyField + " isSet=false updatedAt=-",
		}})

		// --- Access: another customer, a runtime, another organization's
		// admin and a missing instance get NOT_FOUND.
		notFound := func(who string, r wizardResp, raw string) {
			t.Helper()
			if r.Data.ConfigWizard != nil || len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "NOT_FOUND" {
				t.Errorf("%s: want NOT_FOUND, got %s", who, raw)
			}
		}
		a2 := &auth.Viewer{Role: auth.RoleCustomerUser, OrganizationID: s.org.ID, CustomerID: s.a2.ID, Actor: "user:a2"}
		r, raw = queryWizard(t, customerHandler(env.App, a2), "", "", s.inst1.ID)
		notFound("customer A2", r, raw)
		rt := &auth.Viewer{Role: auth.RoleRuntime, OrganizationID: s.org.ID, Actor: "runtime"}
		r, raw = queryWizard(t, customerHandler(env.App, rt), "", "", s.inst1.ID)
		notFound("runtime", r, raw)
		otherOrg, err := server.EnsureOrganization(context.Background(), env.App.Store.Client, "other")
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := env.App.Tokens.Create(context.Background(), otherOrg.ID, auth.RoleOrgAdmin, "other")
		if err != nil {
			t.Fatal(err)
		}
		r, raw = queryWizard(t, nil, url, tok, s.inst1.ID)
		notFound("another organization's admin", r, raw)
		r, raw = queryWizard(t, nil, url, env.AdminToken, s.inst1.ID+100000)
		notFound("a missing instance", r, raw)
		r, raw = queryWizard(t, nil, url, "", s.inst1.ID)
		if len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "UNAUTHENTICATED" {
			t.Errorf("no token: %s", raw)
		}

		// Secrets never come back to anyone.
		for _, secret := range []string{wizAsanaToken, wizAsanaToken2, wizPgPassword, "sealed-token-bytes"} {
			wizardBodies.Lock()
			all := strings.Join(wizardBodies.all, "\n")
			wizardBodies.Unlock()
			if strings.Contains(all, secret) {
				t.Errorf("a response carries the secret %q", secret)
			}
		}
	})
}

func TestWizardPage(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	res, err := http.Get(env.URL + "/wizard?instance=" + "%3Cscript%3Ealert(1)%3C/script%3E%22")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	page := string(b)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /wizard: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for h, want := range map[string]string{
		"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Frame-Options": "DENY",
	} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	// The policy: nothing by default, the page's own script and style by
	// hash, requests only to plugboard.
	csp := res.Header.Get("Content-Security-Policy")
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	inline := func(tag string) string {
		t.Helper()
		_, rest, ok := strings.Cut(page, "<"+tag+">")
		body, _, ok2 := strings.Cut(rest, "</"+tag+">")
		if !ok || !ok2 {
			t.Fatalf("no <%s> in the page", tag)
		}
		sum := sha256.Sum256([]byte(body))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	for name, want := range map[string]string{
		"default-src": "'none'", "script-src": inline("script"), "style-src": inline("style"),
		"connect-src": "'self'", "img-src": "'self'", "form-action": "'none'", "frame-ancestors": "'none'", "base-uri": "'none'",
	} {
		if directives[name] != want {
			t.Errorf("CSP %s = %q, want %q (policy %q)", name, directives[name], want, csp)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "http") {
		t.Errorf("CSP too loose: %q", csp)
	}
	// Self-contained: no external asset, no HTML built from data.
	for _, bad := range []string{"src=", "href=", "http://", "https://", "innerHTML", "outerHTML", "document.write", "eval(", "<script>alert"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page contains %q", bad)
		}
	}
	// The instance id is escaped into the page's JSON data.
	if !strings.Contains(page, `"instance":"\u003cscript\u003ealert(1)\u003c/script\u003e\""`) {
		t.Errorf("the instance is not escaped:\n%s", page)
	}
	// The page's script learns from the scope table which field of a save
	// names a slot's holder.
	if !strings.Contains(page, `"saveHolder":{"CUSTOMER":"customerID","INTEGRATION":"instanceID"}`) {
		t.Error("the page does not name the save holders of the scope table")
	}
	// What the page does: the wizard query, forms by input type, the
	// Connect popup and its message, existing credentials, saving with
	// errors beside the fields, the token kept for a reload.
	for _, want := range []string{
		"configWizard(instanceID: $id)", "location.hash", "history.replaceState", "sessionStorage",
		`"Authorization": "Bearer " + tok`, `fetch("/graphql"`,
		`case "PASSWORD"`, `type: "password"`, `case "PICKLIST"`, `el("select"`, `case "BOOLEAN"`, `type: "checkbox"`,
		`case "TEXT"`, `el("textarea"`, `"aria-invalid"`, `"aria-describedby"`, `id="pb-alert"`, `role="status"`,
		"startOAuth2(input: $in)", "popup: true", "window.open(", `d.type === "plugboard:oauth"`, "ev.origin === location.origin",
		"disconnectCredential(id: $id)", "bindInstanceConnection(input: $in)", `"SELECT_EXISTING"`, `"MANAGED_BY_ORG"`,
		"saveCredential(input: $in)", "userErrors { field code message }", "showErrors(p.userErrors)", "textContent",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// Only GET.
	res2, err := http.Post(env.URL+"/wizard", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /wizard: %d", res2.StatusCode)
	}
}
