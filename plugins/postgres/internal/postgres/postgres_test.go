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
const canary = sdktest.Canary

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
	sdktest.CheckValidate(t, New(), TypeKey, []sdktest.ValidateCase{
		{Name: "complete", Values: base()},
		{Name: "IPv4", Values: base("host", "10.0.0.7", "port", "6432", "sslmode", "verify-full")},
		{Name: "IPv6", Values: base("host", "::1")},
		{Name: "no password", Values: base("password", "")},
		{Name: "empty", Values: map[string]string{}, Errors: map[string]string{"host": "is required", "database": "is required", "user": "is required"}},
		{Name: "port 0", Values: base("port", "0"), Errors: map[string]string{"port": "between 1 and 65535"}},
		{Name: "port too big", Values: base("port", "65536"), Errors: map[string]string{"port": "between 1 and 65535"}},
		{Name: "port not a number", Values: base("port", "5432x"), Errors: map[string]string{"port": ""}},
		{Name: "host with port", Values: base("host", "db.example.com:5432"), Errors: map[string]string{"host": "Enter one host name or IP address"}},
		{Name: "host is a URL", Values: base("host", "postgres://db"), Errors: map[string]string{"host": "Enter one host name or IP address"}},
		{Name: "host is a socket dir", Values: base("host", "/var/run/postgresql"), Errors: map[string]string{"host": "Enter one host name or IP address"}},
		{Name: "two hosts", Values: base("host", "a,b"), Errors: map[string]string{"host": "Enter one host name or IP address"}},
		{Name: "unknown sslmode", Values: base("sslmode", "always"), Errors: map[string]string{"sslmode": "must be one of"}},
	})
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
