package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/ent/organization"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/store"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestCommands(t *testing.T) {
	data := t.TempDir()
	if out, err := run(t, "migrate", "--data-dir", data); err != nil || !strings.Contains(out, "migrated") {
		t.Fatalf("migrate: %v %s", err, out)
	}
	out, err := run(t, "tokens", "create", "--role", "admin", "--data-dir", data, "--name", "ci")
	if err != nil {
		t.Fatalf("tokens create: %v %s", err, out)
	}
	var tok string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "pb_admin_") {
			tok = line
		}
	}
	if tok == "" {
		t.Fatalf("no token printed: %s", out)
	}
	// The printed token authenticates; only its hash is stored.
	s, err := store.Open(context.Background(), "", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	auth.InstallTenantFilter(s.Client)
	if v, err := (&auth.Tokens{DB: s.Client}).Authenticate(context.Background(), tok); err != nil || v.Role != auth.RoleOrgAdmin {
		t.Fatalf("authenticate: %v %v", v, err)
	}
	raw, _ := os.ReadFile(filepath.Join(data, "plugboard.db"))
	if bytes.Contains(raw, []byte(tok)) {
		t.Error("the token is stored in plain text")
	}
	if _, err := run(t, "tokens", "create", "--role", "root", "--data-dir", data); err == nil {
		t.Error("an unknown role was accepted")
	}
	// An unknown organization is refused, saying how to create it, and
	// nothing is created; --create-org creates it.
	out, err = run(t, "tokens", "create", "--org", "typo", "--data-dir", data)
	if err == nil || !strings.Contains(err.Error(), "--create-org") || strings.Contains(out, "pb_admin_") {
		t.Fatalf("tokens create --org typo: %v %s", err, out)
	}
	if n, err := s.Client.Organization.Query().Where(organization.Slug("typo")).Count(auth.SystemContext(context.Background())); err != nil || n != 0 {
		t.Fatalf("organization typo: %d rows, %v", n, err)
	}
	if out, err := run(t, "tokens", "create", "--org", "acme-vendor", "--create-org", "--data-dir", data); err != nil ||
		!strings.Contains(out, "pb_admin_") || !strings.Contains(out, "organization acme-vendor") {
		t.Fatalf("tokens create --create-org: %v %s", err, out)
	}
	if out, err := run(t, "tokens", "create", "--org", "acme-vendor", "--role", "runtime", "--data-dir", data); err != nil || !strings.Contains(out, "pb_rt_") {
		t.Fatalf("tokens create for an existing organization: %v %s", err, out)
	}

	// pin and list: a pinned binary, then a modified and an unpinned one.
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("one", "#!/bin/sh\n")
	if out, err := run(t, "plugins", "pin", "--plugin-dir", dir); err != nil || !strings.Contains(out, "pinned 1 plugin") {
		t.Fatalf("pin: %v %s", err, out)
	}
	write("one", "#!/bin/sh\necho changed\n")
	write("two", "#!/bin/sh\n")
	out, err = run(t, "plugins", "list", "--plugin-dir", dir)
	if err != nil {
		t.Fatalf("list: %v %s", err, out)
	}
	if !strings.Contains(out, "MODIFIED") || !strings.Contains(out, "NOT PINNED") {
		t.Fatalf("list: %s", out)
	}
	for _, c := range [][]string{{"serve", "--help"}, {"migrate", "--help"}, {"plugins", "pin", "--help"}, {"tokens", "create", "--help"}} {
		if out, err := run(t, c...); err != nil || !strings.Contains(out, "--") {
			t.Errorf("%v: %v %s", c, err, out)
		}
	}
}
