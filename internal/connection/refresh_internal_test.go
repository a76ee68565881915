package connection

import (
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/oauth"
)

func TestBackoff(t *testing.T) {
	prev := time.Duration(0)
	for n := 1; n <= 12; n++ {
		d := backoff(n)
		lo := time.Duration(float64(min(backoffBase<<(n-1), backoffMax)) * 0.8)
		if d < lo || d > backoffMax {
			t.Errorf("backoff(%d) = %s, want in [%s, %s]", n, d, lo, backoffMax)
		}
		if n <= 5 && d < prev/2 {
			t.Errorf("backoff(%d) = %s shrank from %s", n, d, prev)
		}
		prev = d
	}
}

func TestNextRefresh(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := nextRefresh(&oauth.Token{Expiry: now.Add(time.Hour)}, 10*time.Minute, now); !got.Equal(now.Add(50 * time.Minute)) {
		t.Errorf("1h token: next refresh %s", got)
	}
	// A token shorter than the margin is refreshed at half its life, not
	// immediately and forever.
	if got := nextRefresh(&oauth.Token{Expiry: now.Add(4 * time.Minute)}, 10*time.Minute, now); !got.Equal(now.Add(2 * time.Minute)) {
		t.Errorf("4 min token: next refresh %s", got)
	}
	if got := nextRefresh(&oauth.Token{}, 10*time.Minute, now); got != nil {
		t.Errorf("token without expiry: next refresh %s", got)
	}
}
