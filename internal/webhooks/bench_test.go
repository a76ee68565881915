package webhooks_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/egress"
	"github.com/plugboard/plugboard/internal/secrets"
	"github.com/plugboard/plugboard/internal/secrets/sealed"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
	"github.com/plugboard/plugboard/internal/webhooks"
)

// BenchmarkWebhookDelivery measures events delivered per second to a
// local receiver: the outbox holds b.N due deliveries, and one worker
// (batches of 64, 16 in flight) claims, signs, POSTs and records them.
//
//	go test ./internal/webhooks -run '^$' -bench WebhookDelivery
func BenchmarkWebhookDelivery(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchDelivery(b, storetest.SQLite(b)) })
	b.Run("postgres", func(b *testing.B) { benchDelivery(b, storetest.Postgres(b)) })
}

func benchDelivery(b *testing.B, st *store.Store) {
	var got atomic.Int64
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("webhook-signature") != "" {
			got.Add(1)
		}
	}))
	b.Cleanup(rc.Close)
	master, err := secrets.GenerateMasterKey()
	if err != nil {
		b.Fatal(err)
	}
	keys := secrets.NewKeyring(master, &store.KeyStore{DB: st.Client})
	ctx := auth.SystemContext(context.Background())
	ep := benchEndpoint(b, ctx, st.Client, keys, rc.URL)
	w := webhooks.New(webhooks.Config{
		DB: st.Client, Dialect: st.Dialect, Keys: keys,
		Client: egress.NewClient(egress.Policy{AllowLoopback: true}, egress.ClientOptions{}),
	})
	enqueue(b, ctx, st.Client, ep, b.N)
	b.ResetTimer()
	start := time.Now()
	for got.Load() < int64(b.N) {
		if _, err := w.RunOnce(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

func benchEndpoint(b *testing.B, ctx context.Context, db *ent.Client, keys *secrets.Keyring, url string) *ent.WebhookEndpoint {
	org := db.Organization.Create().SetName("bench").SetSlug("bench").SaveX(ctx)
	ep := db.WebhookEndpoint.Create().SetOrganizationID(org.ID).SetURL(url).
		SetEvents([]string{"credential.created"}).SetSecret([]byte{}).SaveX(ctx)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	box, err := keys.Encrypt(ctx, []byte("whsec_"+base64.StdEncoding.EncodeToString(key)), sealed.WebhookSecret.AAD(ep.ID))
	if err != nil {
		b.Fatal(err)
	}
	return ep.Update().SetSecret(box).SaveX(ctx)
}

// enqueue writes n due deliveries of n events to ep, in batches.
func enqueue(b *testing.B, ctx context.Context, db *ent.Client, ep *ent.WebhookEndpoint, n int) {
	now := time.Now().UTC()
	for done := 0; done < n; {
		k := min(500, n-done)
		evs := make([]*ent.WebhookEventCreate, k)
		for i := range evs {
			evs[i] = db.WebhookEvent.Create().SetOrganizationID(ep.OrganizationID).SetMessageID("msg_" + rand.Text()).
				SetType("credential.created").SetPayload(fmt.Sprintf(`{"type":"credential.created","data":{"seq":%d}}`, done+i)).SetCreatedAt(now)
		}
		created := db.WebhookEvent.CreateBulk(evs...).SaveX(ctx)
		ds := make([]*ent.WebhookDeliveryCreate, k)
		for i, ev := range created {
			ds[i] = db.WebhookDelivery.Create().SetOrganizationID(ep.OrganizationID).SetEndpointID(ep.ID).SetEventID(ev.ID).SetNextAttemptAt(now)
		}
		db.WebhookDelivery.CreateBulk(ds...).ExecX(ctx)
		done += k
	}
}
