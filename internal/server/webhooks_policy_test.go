package server

import (
	"testing"

	"github.com/plugboard/plugboard/internal/egress"
)

// TestWebhookPolicyRequiresHTTPS: endpoints must use https:// unless the
// server allows loopback receivers (--dev, tests).
func TestWebhookPolicyRequiresHTTPS(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want bool
	}{
		{Options{}, true},
		{Options{Egress: egress.Policy{AllowPrivate: true}}, true},
		{Options{Dev: true}, false},
		{Options{Egress: egress.Policy{AllowLoopback: true}}, false},
	} {
		if got := webhookPolicy(tc.o).RequireHTTPS; got != tc.want {
			t.Errorf("%+v: RequireHTTPS %v, want %v", tc.o, got, tc.want)
		}
	}
}
