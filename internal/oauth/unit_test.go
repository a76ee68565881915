package oauth

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestCheckRedirect(t *testing.T) {
	allow := []string{"https://app.example.com/oauth", "https://wizard.example.com/", "http://localhost:3000/cb/"}
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://app.example.com/oauth", true},
		{"https://app.example.com/oauth/done?x=1", true},
		{"https://APP.example.com:443/oauth/done", true},
		{"https://app.example.com/oauthx", false},
		{"https://app.example.com/other", false},
		{"https://app.example.com.evil.com/oauth", false},
		{"https://evil.com/https://app.example.com/oauth", false},
		{"https://app.example.com@evil.com/oauth", false},
		{"https://user@app.example.com/oauth", false},
		{"http://app.example.com/oauth", false},
		{"https://app.example.com:8443/oauth", false},
		{"https://app.example.com/oauth/../admin", false},
		{"https://app.example.com/oauth/%2e%2e/admin", false},
		{"https://app.example.com/oauth%2fdone", false},
		{`https://app.example.com\@evil.com/oauth`, false},
		{"//app.example.com/oauth", false},
		{"javascript:alert(1)//app.example.com/oauth", false},
		{"https://wizard.example.com/anything/at/all", true},
		{"https://wizard.example.com", true},
		{"http://localhost:3000/cb/x", true},
		{"http://localhost:3000/cb", false},
		{"http://localhost:3001/cb/x", false},
		{"", false},
	} {
		_, err := checkRedirect(allow, tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("checkRedirect(%q) = %v, want ok=%v", tc.url, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrRedirectNotAllowed) {
			t.Errorf("checkRedirect(%q) = %v, want ErrRedirectNotAllowed", tc.url, err)
		}
	}
	if _, err := checkRedirect(nil, "https://app.example.com/oauth"); err == nil {
		t.Error("an empty allow-list allowed a redirect")
	}
}

func TestSanitize(t *testing.T) {
	got := sanitize("<script>alert('x')</script>\n\tThe user   said no; token SECRET-1234 \x00\x1b[31m", []string{"SECRET-1234"}, 200)
	for _, bad := range []string{"<", ">", "SECRET-1234", "\x00", "\x1b", "\n"} {
		if strings.Contains(got, bad) {
			t.Errorf("sanitize kept %q: %q", bad, got)
		}
	}
	if !strings.Contains(got, "The user said no") || !strings.Contains(got, "[redacted]") {
		t.Errorf("sanitize lost the message: %q", got)
	}
	long := sanitize(strings.Repeat("a", 1000), nil, 50)
	if n := len([]rune(long)); n != 51 || !strings.HasSuffix(long, "…") {
		t.Errorf("sanitize did not clip to 50 runes: %d %q", n, long)
	}
}

func TestTokenRedacts(t *testing.T) {
	tok := &Token{AccessToken: "AT-SECRET", RefreshToken: "RT-SECRET", TokenType: "Bearer",
		Expiry: time.Now(), Scopes: []string{"a"}, Extra: map[string]any{"id_token": "ID-SECRET"}}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "tok", tok, "val", *tok)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "tok", tok)
	outs := []string{
		fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s %q", tok, tok, tok, tok, tok),
		fmt.Sprintf("%v %+v %#v %s %q", *tok, *tok, *tok, *tok, *tok),
		tok.String(), buf.String(),
	}
	for _, out := range outs {
		if strings.Contains(out, "SECRET") {
			t.Errorf("a token printed a secret: %s", out)
		}
	}
	if !strings.Contains(tok.String(), "[redacted]") || !strings.Contains(tok.String(), "id_token") {
		t.Errorf("String says too little: %s", tok)
	}
}

func TestProviderErrorWraps(t *testing.T) {
	perm := &ProviderError{Code: "invalid_grant", Permanent: true, Message: "m"}
	if !errors.Is(perm, ErrProvider) || !errors.Is(perm, ErrReconnectNeeded) {
		t.Error("a permanent provider error does not wrap ErrProvider and ErrReconnectNeeded")
	}
	tr := &ProviderError{Code: "http_503", Message: "m"}
	if !errors.Is(tr, ErrProvider) || errors.Is(tr, ErrReconnectNeeded) || !tr.transient() {
		t.Error("a transient provider error is mis-wrapped")
	}
}
