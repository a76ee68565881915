package events_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/plugboard/plugboard/internal/events"
)

// Watch sees every status change of every organization, as published.
func TestWatchSeesEveryOrganization(t *testing.T) {
	bus := events.NewBus(nil)
	var mu sync.Mutex
	var seen []int
	bus.Watch(func(ev events.StatusChange) {
		mu.Lock()
		seen = append(seen, ev.OrganizationID*100+ev.CredentialID)
		mu.Unlock()
	})
	ctx := context.Background()
	bus.Publish(ctx, events.StatusChange{OrganizationID: 1, CredentialID: 7, To: "ERROR"})
	bus.Publish(ctx, events.StatusChange{OrganizationID: 2, CredentialID: 8, To: "ACTIVE"})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, []int{107, 208}) {
		t.Fatalf("watched %v, want [107 208]", seen)
	}
}
