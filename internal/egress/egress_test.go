package egress_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/egress"
)

func TestCheckAddr(t *testing.T) {
	cases := []struct {
		addr          string
		strict, loose bool // allowed by the zero policy, by a policy allowing both
	}{
		{"93.184.216.34", true, true},
		{"2606:2800:220:1:248:1893:25c8:1946", true, true},
		{"169.254.169.254", false, false},
		{"::ffff:169.254.169.254", false, false},
		{"fd00:ec2::254", false, false},
		{"100.100.100.200", false, false},
		{"169.254.10.1", false, false},
		{"fe80::1", false, false},
		{"0.0.0.0", false, false},
		{"::", false, false},
		{"224.0.0.1", false, false},
		{"127.0.0.1", false, true},
		{"::1", false, true},
		{"10.1.2.3", false, true},
		{"172.20.0.1", false, true},
		{"192.168.1.1", false, true},
		{"100.64.0.1", false, true},
		{"fd12::1", false, true},
	}
	loose := egress.Policy{AllowPrivate: true, AllowLoopback: true}
	for _, c := range cases {
		a := netip.MustParseAddr(c.addr)
		strict := egress.Policy{}
		if got := strict.CheckAddr(a) == nil; got != c.strict {
			t.Errorf("zero policy, %s: allowed=%v, want %v", c.addr, got, c.strict)
		}
		if got := loose.CheckAddr(a) == nil; got != c.loose {
			t.Errorf("loose policy, %s: allowed=%v, want %v", c.addr, got, c.loose)
		}
	}
}

func TestCheckURL(t *testing.T) {
	ctx := context.Background()
	for raw, want := range map[string]string{
		"ftp://example.com/":                       "http:// or https://",
		"https:///path":                            "no host",
		"http://169.254.169.254/latest":            "metadata",
		"http://127.0.0.1:8080/hook":               "loopback",
		"https://[fe80::1]/":                       "link-local",
		"http://10.0.0.5/":                         "private",
		"http://name.that.does.not.exist.invalid/": "does not resolve",
	} {
		err := egress.CheckURL(ctx, raw, egress.Policy{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckURL(%q) = %v, want an error containing %q", raw, err, want)
		}
	}
	if err := egress.CheckURL(ctx, "http://127.0.0.1:8080/hook", egress.Policy{AllowLoopback: true}); err != nil {
		t.Errorf("loopback allowed: %v", err)
	}
}

// The dial-time check refuses a loopback upstream under the zero policy, and
// the client returns a redirect instead of following it.
func TestClient(t *testing.T) {
	var hits int
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.URL.Path == "/away" {
			http.Redirect(w, r, "http://other.example/steal", http.StatusFound)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer upstream.Close()

	_, err := egress.NewClient(egress.Policy{}, egress.ClientOptions{}).Get(upstream.URL)
	var denied *egress.DeniedError
	if !errors.As(err, &denied) || !denied.Addr.IsLoopback() {
		t.Fatalf("zero policy to a loopback upstream: err = %v, want a DeniedError", err)
	}
	if hits != 0 {
		t.Fatalf("the refused call reached the upstream %d times", hits)
	}

	c := egress.NewClient(egress.Policy{AllowLoopback: true}, egress.ClientOptions{})
	resp, err := c.Get(upstream.URL + "/away")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "http://other.example/steal" {
		t.Fatalf("redirect: status %d, Location %q; want the 302 itself", resp.StatusCode, resp.Header.Get("Location"))
	}
	if hits != 1 {
		t.Fatalf("upstream hits = %d, want 1", hits)
	}
}
