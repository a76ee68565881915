package postgres

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/plugins/sdk"
	"github.com/plugboard/plugboard/plugins/sdk/sdktest"
)

// canary is a secret that must appear in no message.
const canary = "canary-secret-7f3a"

func TestConformance(t *testing.T) {
	sdktest.Check(t, sdktest.Build(t, "github.com/plugboard/plugboard/plugins/postgres"))
}

func TestValidate(t *testing.T) {
	base := func(kv ...string) map[string]string {
		v := map[string]string{"host": "db.example.com", "database": "app", "user": "app", "password": canary}
		for i := 0; i < len(kv); i += 2 {
			v[kv[i]] = kv[i+1]
		}
		return v
	}
	tests := []struct {
		name   string
		values map[string]string
		want   []string // fields with an ERROR
	}{
		{"complete", base(), nil},
		{"IPv4", base("host", "10.0.0.7", "port", "6432", "sslmode", "verify-full"), nil},
		{"IPv6", base("host", "::1"), nil},
		{"no password", base("password", ""), nil},
		{"empty", map[string]string{}, []string{"host", "database", "user"}},
		{"port 0", base("port", "0"), []string{"port"}},
		{"port too big", base("port", "65536"), []string{"port"}},
		{"port not a number", base("port", "5432x"), []string{"port"}},
		{"host with port", base("host", "db.example.com:5432"), []string{"host"}},
		{"host is a URL", base("host", "postgres://db"), []string{"host"}},
		{"host is a socket dir", base("host", "/var/run/postgresql"), []string{"host"}},
		{"two hosts", base("host", "a,b"), []string{"host"}},
		{"unknown sslmode", base("sslmode", "always"), []string{"sslmode"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := New().Validate(context.Background(), &sdk.ValidateRequest{TypeKey: TypeKey, Values: tt.values})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range resp.Diagnostics {
				got = append(got, d.Field)
				if strings.Contains(d.Summary+d.Detail, canary) {
					t.Errorf("diagnostic %+v leaks the password", d)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("diagnostics on %v, want %v: %+v", got, tt.want, resp.Diagnostics)
			}
		})
	}
}

func test(t *testing.T, values map[string]string) *sdk.TestResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := New().Test(ctx, &sdk.TestRequest{TypeKey: TypeKey, Values: values})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(resp.Message, canary) {
		t.Errorf("the message leaks the password: %q", resp.Message)
	}
	return resp
}

func TestTestWithoutAServer(t *testing.T) {
	resp := test(t, map[string]string{"host": "127.0.0.1", "port": "1", "database": "app", "user": "app", "password": canary, "sslmode": "disable"})
	if resp.OK || !strings.Contains(resp.Message, "127.0.0.1:1") {
		t.Errorf("Test = %+v, want not OK naming the address", resp)
	}
	resp = test(t, map[string]string{"host": "db.example.com", "port": "0", "password": canary})
	if resp.OK || !strings.Contains(resp.Message, "not valid") {
		t.Errorf("Test with invalid values = %+v, want not OK", resp)
	}
}

// serverValues returns the values for the server that
// PLUGBOARD_TEST_POSTGRES_URL names, or skips the test.
func serverValues(t *testing.T) map[string]string {
	t.Helper()
	raw := os.Getenv("PLUGBOARD_TEST_POSTGRES_URL")
	if raw == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but PLUGBOARD_TEST_POSTGRES_URL is not set: CI must run the PostgreSQL tests")
		}
		t.Skip("set PLUGBOARD_TEST_POSTGRES_URL (e.g. postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable) to test against a real PostgreSQL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("PLUGBOARD_TEST_POSTGRES_URL does not parse: %v", err)
	}
	password, _ := u.User.Password()
	sslmode := u.Query().Get("sslmode")
	if sslmode == "" {
		sslmode = "prefer"
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	return map[string]string{
		"host":     u.Hostname(),
		"port":     port,
		"database": strings.TrimPrefix(u.Path, "/"),
		"user":     u.User.Username(),
		"password": password,
		"sslmode":  sslmode,
	}
}

func TestTestAgainstPostgreSQL(t *testing.T) {
	good := serverValues(t)
	if resp := test(t, good); !resp.OK || !strings.Contains(resp.Message, "Connected to PostgreSQL") {
		t.Fatalf("Test = %+v, want OK", resp)
	}

	noDB := copyWith(good, "database", "plugboard_no_such_db")
	if resp := test(t, noDB); resp.OK || !strings.Contains(resp.Message, "does not exist") {
		t.Errorf("missing database: Test = %+v, want not OK saying it does not exist", resp)
	}

	wrong := copyWith(good, "password", canary)
	resp := test(t, wrong)
	if resp.OK {
		t.Skip("the server trusts this user without a password; cannot test a wrong password")
	}
	if !strings.Contains(resp.Message, "password authentication failed") {
		t.Errorf("wrong password: Test = %+v, want it to say password authentication failed", resp)
	}

	// The plugin process's environment must not fill in a password.
	if good["password"] != "" {
		t.Setenv("PGPASSWORD", good["password"])
		if resp := test(t, copyWith(good, "password", "")); resp.OK {
			t.Errorf("Test without a password connected using PGPASSWORD from the environment: %+v", resp)
		}
	}
}

func copyWith(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for key, val := range m {
		if key != k {
			out[key] = val
		}
	}
	return out
}
