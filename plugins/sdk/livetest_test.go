package sdk_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/plugins/sdk"
)

func TestInvalidValues(t *testing.T) {
	if got := sdk.InvalidValues(nil); got != nil {
		t.Errorf("InvalidValues(nil) = %+v, want nil", got)
	}
	if got := sdk.InvalidValues([]sdk.Diagnostic{sdk.WarningDiag("a", "Careful.")}); got != nil {
		t.Errorf("InvalidValues(a warning) = %+v, want nil", got)
	}
	got := sdk.InvalidValues([]sdk.Diagnostic{
		sdk.WarningDiag("a", "Careful."),
		sdk.ErrorDiag("b", "B is required."),
		sdk.ErrorDiag("c", "C is required."),
	})
	if got == nil || got.OK || got.Message != "The values are not valid: B is required." {
		t.Errorf("InvalidValues(errors) = %+v, want not OK naming the first error", got)
	}
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCheckHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte(`{"name":"Ada"}`))
		case "/big":
			w.Write([]byte(strings.Repeat("x", 2<<20)))
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		default:
			http.Error(w, "no", http.StatusTeapot)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	get := func(t *testing.T, ctx context.Context, client *http.Client, url string) (*sdk.TestResponse, int, int) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		status, size := 0, -1
		resp := sdk.CheckHTTP(ctx, client, req, func(s int, body []byte) *sdk.TestResponse {
			status, size = s, len(body)
			if s == http.StatusOK {
				return &sdk.TestResponse{OK: true, Message: string(body)}
			}
			return nil
		})
		return resp, status, size
	}

	t.Run("answer", func(t *testing.T) {
		resp, status, _ := get(t, context.Background(), nil, srv.URL+"/ok")
		if !resp.OK || resp.Message != `{"name":"Ada"}` || status != http.StatusOK {
			t.Errorf("CheckHTTP = %+v (status %d), want the answer's verdict", resp, status)
		}
	})
	t.Run("no verdict", func(t *testing.T) {
		resp, _, _ := get(t, context.Background(), nil, srv.URL+"/other")
		if want := host + " answered 418 I'm a teapot."; resp.OK || resp.Message != want {
			t.Errorf("CheckHTTP = %+v, want not OK %q", resp, want)
		}
	})
	t.Run("body is bounded", func(t *testing.T) {
		if _, _, size := get(t, context.Background(), nil, srv.URL+"/big"); size != 1<<20 {
			t.Errorf("answer got %d bytes of the body, want 1 MiB", size)
		}
	})
	t.Run("too slow", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		resp, status, _ := get(t, ctx, nil, srv.URL+"/slow")
		if want := host + " did not answer in time."; resp.OK || resp.Message != want || status != 0 {
			t.Errorf("CheckHTTP = %+v, want not OK %q without calling answer", resp, want)
		}
	})
	t.Run("unreachable, without quoting the URL", func(t *testing.T) {
		resp, _, _ := get(t, context.Background(), nil, "http://127.0.0.1:1/x?key="+canary)
		if resp.OK || !strings.HasPrefix(resp.Message, "Could not reach 127.0.0.1:1: ") || strings.Contains(resp.Message, canary) {
			t.Errorf("CheckHTTP = %+v, want not OK naming the host and not the URL", resp)
		}
	})
	t.Run("a deadline when ctx has none", func(t *testing.T) {
		client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if _, ok := r.Context().Deadline(); !ok {
				return nil, errors.New("no deadline")
			}
			return nil, errors.New("has a deadline")
		})}
		resp, _, _ := get(t, context.Background(), client, "https://api.example.com/x")
		if want := "Could not reach api.example.com: has a deadline."; resp.Message != want {
			t.Errorf("CheckHTTP = %+v, want %q", resp, want)
		}
	})
}

func TestRedact(t *testing.T) {
	got := sdk.Redact("token "+canary+" and "+canary+"-2 echoed", "", canary)
	if got != "token [redacted] and [redacted]-2 echoed" {
		t.Errorf("Redact = %q", got)
	}
	if got := sdk.Redact("nothing", ""); got != "nothing" {
		t.Errorf("Redact with an empty secret = %q", got)
	}
}
