package server_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/webhookendpoint"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection"
	"github.com/plugboard/plugboard/internal/globalid"
	"github.com/plugboard/plugboard/internal/secrets"
	"github.com/plugboard/plugboard/internal/secrets/sealed"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

// TestTwoReplicasDeliverEachEventOnce: two replicas on one PostgreSQL
// database share an outbox of 1 000 events; a counting receiver gets each
// webhook-id exactly once, and both replicas deliver a share.
func TestTwoReplicasDeliverEachEventOnce(t *testing.T) {
	cfg := replicasConfig(t, servertest.Config{Plugins: []string{"asana"}, WebhookWorker: true})
	var mu sync.Mutex
	counts := map[string]int{}
	rc := newReceiver(t, nil)
	rc.answer = func(n int) int {
		got := rc.all()
		mu.Lock()
		counts[got[n-1].id]++
		mu.Unlock()
		return http.StatusOK
	}
	a := servertest.Start(t, cfg)
	endpoint, _ := registerEndpoint(t, a, rc.srv.URL, "credential.created")
	epID, _ := globalid.Decode(endpoint)
	b := servertest.Start(t, cfg)
	const n = 1000
	start := time.Now()
	enqueueEvents(t, a.App.Store.Client, epID, n)
	rc.waitFor(t, "1 000 events", func(g []received) bool { return len(g) >= n })
	took := time.Since(start)
	time.Sleep(500 * time.Millisecond) // a duplicate would come now
	mu.Lock()
	defer mu.Unlock()
	if len(counts) != n {
		t.Fatalf("%d distinct webhook-ids delivered, want %d", len(counts), n)
	}
	for id, c := range counts {
		if c != 1 {
			t.Fatalf("event %s delivered %d times", id, c)
		}
	}
	sa, sb := succeeded(t, a), succeeded(t, b)
	t.Logf("%d events delivered once each in %s: replica A %d, replica B %d", n, took.Round(time.Millisecond), sa, sb)
	if sa+sb != n || sa == 0 || sb == 0 {
		t.Fatalf("replica A delivered %d and B %d of %d", sa, sb, n)
	}
}

// enqueueEvents writes n events for the endpoint straight to the outbox,
// as the audit helper does, in one transaction.
func enqueueEvents(t *testing.T, db *ent.Client, endpointID, n int) {
	t.Helper()
	ctx := auth.SystemContext(context.Background())
	ep, err := db.WebhookEndpoint.Query().Where(webhookendpoint.ID(endpointID)).Only(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.Tx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	evs := make([]*ent.WebhookEventCreate, n)
	for i := range evs {
		evs[i] = tx.WebhookEvent.Create().SetOrganizationID(ep.OrganizationID).SetMessageID(connection.NewWebhookMessageID()).
			SetType("credential.created").SetPayload(fmt.Sprintf(`{"type":"credential.created","data":{"seq":%d}}`, i)).SetCreatedAt(now)
	}
	created, err := tx.WebhookEvent.CreateBulk(evs...).Save(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ds := make([]*ent.WebhookDeliveryCreate, n)
	for i, ev := range created {
		ds[i] = tx.WebhookDelivery.Create().SetOrganizationID(ep.OrganizationID).SetEndpointID(ep.ID).SetEventID(ev.ID).SetNextAttemptAt(now)
	}
	if err := tx.WebhookDelivery.CreateBulk(ds...).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

var succeededLine = regexp.MustCompile(`plugboard_webhook_deliveries_total\{outcome="succeeded"\} (\d+)`)

func succeeded(t *testing.T, env *servertest.Env) int {
	m := succeededLine.FindStringSubmatch(metricsText(t, env))
	if m == nil {
		return 0
	}
	v, _ := strconv.Atoi(m[1])
	return v
}

// TestWebhookSecretsReencryptedByKeyRotation: rotateEncryptionKey
// re-seals both secret columns of an endpoint in the middle of a
// rotation's overlap, and deliveries still carry both valid signatures.
func TestWebhookSecretsReencryptedByKeyRotation(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}, WebhookWorker: true}, func(t *testing.T, env *servertest.Env) {
		rc := newReceiver(t, nil)
		endpoint, old := registerEndpoint(t, env, rc.srv.URL, "credential.created")
		r := env.Do(t, `mutation($e: ID!) { rotateWebhookSecret(id: $e) { secret } }`, map[string]any{"e": endpoint})
		mustOK(t, r)
		cur := servertest.Str(r.Data, "rotateWebhookSecret.secret")
		id, _ := globalid.Decode(endpoint)
		ctx := auth.SystemContext(context.Background())
		before := env.App.Store.Client.WebhookEndpoint.GetX(ctx, id)

		r = env.Do(t, `mutation { rotateEncryptionKey { keyID reencrypted remaining } }`, nil)
		mustOK(t, r)
		if servertest.Get(r.Data, "rotateEncryptionKey.remaining").(float64) != 0 {
			t.Fatalf("rotation: %s", r.Raw)
		}
		after := env.App.Store.Client.WebhookEndpoint.GetX(ctx, id)
		if string(after.Secret) == string(before.Secret) || string(*after.PreviousSecret) == string(*before.PreviousSecret) {
			t.Fatal("rotateEncryptionKey left a webhook secret under the old data key")
		}
		keyID := servertest.Str(r.Data, "rotateEncryptionKey.keyID")
		for _, c := range []struct {
			ct   []byte
			aad  []byte
			want string
		}{{after.Secret, sealed.WebhookSecret.AAD(id), cur}, {*after.PreviousSecret, sealed.WebhookPreviousSecret.AAD(id), old}} {
			if env, err := secrets.ParseCiphertext(c.ct); err != nil || env.KeyID != keyID {
				t.Fatalf("sealed under %q (%v), want %q", env.KeyID, err, keyID)
			}
			pt, err := env.App.Keys.Decrypt(ctx, c.ct, c.aad)
			if err != nil || string(pt) != c.want {
				t.Fatalf("re-sealed secret does not open to what it was: %v", err)
			}
		}
		conn, customer := createAsanaConnection(t, env)
		saveAsanaFor(t, env, conn, customer, canary)
		got := rc.waitFor(t, "a delivery", func(g []received) bool { return len(g) >= 1 })
		if !signedBy(got[0], old) || !signedBy(got[0], cur) || strings.Count(got[0].signature, "v1,") != 2 {
			t.Fatalf("after the key rotation: %q", got[0].signature)
		}
	})
}
