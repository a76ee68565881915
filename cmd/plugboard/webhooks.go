package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/plugboard/plugboard/internal/server"
)

// registerWebhookFlags adds the webhook worker's flags to serve.
func registerWebhookFlags(cmd *cobra.Command) *server.WebhookOptions {
	o := &server.WebhookOptions{}
	cmd.Flags().DurationVar(&o.Lease, "webhook-lease", 30*time.Second,
		"how long a replica's claim holds a webhook delivery: a replica killed mid-delivery delays it by at most this")
	cmd.Flags().BoolVar(&o.Disabled, "no-webhook-worker", false,
		"deliver no webhooks from this process (the outbox is still written; another replica delivers it)")
	return o
}
