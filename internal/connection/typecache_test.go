package connection

import (
	"testing"
	"time"

	"github.com/plugboard/plugboard/ent"
)

// A cached type is served under the catalog version it was read at, for
// less than TypeCacheTTL; a new version or an older entry is a miss.
func TestTypeCacheFollowsTheCatalog(t *testing.T) {
	var c typeCache
	now := time.Now()
	ct := &ent.ConnectionType{ID: 7, Key: "asana.apiKey"}
	if c.get(7, 1, now) != nil {
		t.Fatal("an empty cache answered")
	}
	c.put(ct, 1, now)
	if got := c.get(7, 1, now.Add(TypeCacheTTL-time.Millisecond)); got != ct {
		t.Errorf("within the TTL: %v, want the cached type", got)
	}
	if got := c.get(7, 2, now); got != nil {
		t.Errorf("after a catalog sync (version 2): %v, want a miss", got)
	}
	if got := c.get(7, 1, now.Add(TypeCacheTTL)); got != nil {
		t.Errorf("after the TTL: %v, want a miss", got)
	}
	c.put(&ent.ConnectionType{ID: 8}, 2, now)
	if got := c.get(7, 1, now); got != nil {
		t.Errorf("an entry of version 1 survived a put under version 2: %v", got)
	}
}
