package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plugboard/plugboard/internal/connection"
	"github.com/plugboard/plugboard/internal/egress"
	"github.com/plugboard/plugboard/internal/webhooks"
)

// WebhookOptions configure the webhook delivery worker; zero values take
// its defaults (webhooks.Config).
type WebhookOptions struct {
	// Disabled runs no worker in this process (--no-webhook-worker): the
	// outbox is still written, and another replica delivers it.
	Disabled bool
	// Lease is how long a claim holds a delivery (--webhook-lease).
	Lease time.Duration
	// Poll is how often an idle worker reads the outbox.
	Poll time.Duration
	// RetryBase is the first retry's delay.
	RetryBase time.Duration
}

// webhookPolicy is where endpoints may point: the egress policy, and
// https unless loopback receivers are allowed (--dev, tests).
func webhookPolicy(o Options) connection.WebhookPolicy {
	return connection.WebhookPolicy{Egress: o.Egress, RequireHTTPS: !o.Dev && !o.Egress.AllowLoopback}
}

// startWebhooks starts the delivery worker, unless disabled.
func (a *App) startWebhooks() {
	o := a.Options
	if o.Webhooks.Disabled {
		return
	}
	a.Webhooks = webhooks.New(webhooks.Config{
		DB: a.Store.Client, Dialect: a.Store.Dialect, Keys: a.Keys, Log: a.Log.With("component", "webhooks"),
		Client: egress.NewClient(o.Egress, egress.ClientOptions{ResponseHeaderTimeout: 15 * time.Second}),
		Lease:  o.Webhooks.Lease, Poll: o.Webhooks.Poll, RetryBase: o.Webhooks.RetryBase,
		Now: o.Now, Observe: a.Metrics.webhookCounter(),
	})
	a.Webhooks.Start()
}

// webhookCounter registers plugboard_webhook_deliveries_total and returns
// the function that counts one attempt by outcome.
func (m *Metrics) webhookCounter() func(outcome string) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plugboard_webhook_deliveries_total",
		Help: "Webhook delivery attempts by outcome (succeeded, retrying, failed).",
	}, []string{"outcome"})
	for _, o := range []string{webhooks.OutcomeSucceeded, webhooks.OutcomeRetrying, webhooks.OutcomeFailed} {
		c.WithLabelValues(o)
	}
	m.reg.MustRegister(c)
	return func(outcome string) { c.WithLabelValues(outcome).Inc() }
}
