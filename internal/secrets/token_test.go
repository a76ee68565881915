package secrets_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/secrets"
)

func TestHashToken(t *testing.T) {
	// SHA-256 of "abc", from FIPS 180-2.
	const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := secrets.HashToken("abc"); got != abc {
		t.Fatalf("HashToken(abc) = %s; want %s", got, abc)
	}
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"same", secrets.HashToken("pb_admin_x"), secrets.HashToken("pb_admin_x"), true},
		{"different token", secrets.HashToken("pb_admin_x"), secrets.HashToken("pb_admin_y"), false},
		{"different length", abc, abc[:10], false},
		{"empty", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := secrets.EqualHash(tt.a, tt.b); got != tt.want {
				t.Fatalf("EqualHash = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestRandomToken(t *testing.T) {
	tests := []struct {
		prefix  string
		nbytes  int
		wantErr bool
	}{
		{"pb_admin_", 32, false},
		{"pb_rt_", 16, false},
		{"", 512, false},
		{"pb_admin_", 15, true},
		{"pb_admin_", 0, true},
		{"pb_admin_", -1, true},
		{"pb_admin_", 513, true},
	}
	for _, tt := range tests {
		tok, err := secrets.RandomToken(tt.prefix, tt.nbytes)
		if tt.wantErr {
			if err == nil {
				t.Errorf("RandomToken(%q, %d) = %q; want an error", tt.prefix, tt.nbytes, tok)
			}
			continue
		}
		if err != nil {
			t.Fatalf("RandomToken(%q, %d): %v", tt.prefix, tt.nbytes, err)
		}
		body, ok := strings.CutPrefix(tok, tt.prefix)
		if !ok {
			t.Fatalf("token %q lacks prefix %q", tok, tt.prefix)
		}
		raw, err := base64.RawURLEncoding.DecodeString(body)
		if err != nil || len(raw) != tt.nbytes {
			t.Fatalf("token body %q is not %d bytes of unpadded URL-safe base64", body, tt.nbytes)
		}
	}
	seen := map[string]bool{}
	for range 1000 {
		tok, _ := secrets.RandomToken("pb_", 16)
		if seen[tok] {
			t.Fatal("RandomToken repeated a token")
		}
		seen[tok] = true
	}
}
