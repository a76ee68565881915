package store

import (
	"errors"
	"strings"
	"testing"

	"entgo.io/ent/dialect"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		url, dataDir string
		driver, path string
		dsnPrefix    string
		memory       bool
	}{
		{"", "/var/lib/pb", "sqlite", "/var/lib/pb/plugboard.db", "/var/lib/pb/plugboard.db?", false},
		{"sqlite:///tmp/x.db", "", "sqlite", "/tmp/x.db", "/tmp/x.db?", false},
		{"sqlite://rel/x.db", "", "sqlite", "rel/x.db", "rel/x.db?", false},
		{"sqlite:x.db?_pragma=cache_size(-2000)", "", "sqlite", "x.db", "x.db?", false},
		{"sqlite://:memory:", "", "sqlite", "", "file::memory:?", true},
		{"file:pb?mode=memory&cache=shared", "", "sqlite", "", "file:pb?", true},
		{"file:/tmp/y.db", "", "sqlite", "", "file:/tmp/y.db?", false},
		{"postgres://u:p@h/db", "", "pgx", "", "postgres://u:p@h/db", false},
		{"postgresql://u:p@h/db?sslmode=disable", "", "pgx", "", "postgresql://u:p@h/db?sslmode=disable", false},
	}
	for _, tt := range tests {
		got, err := parseTarget(tt.url, tt.dataDir)
		if err != nil {
			t.Errorf("parseTarget(%q): %v", tt.url, err)
			continue
		}
		if got.driver != tt.driver || got.path != tt.path || got.memory != tt.memory || !strings.HasPrefix(got.dsn, tt.dsnPrefix) {
			t.Errorf("parseTarget(%q) = %+v", tt.url, got)
		}
		if got.driver == "sqlite" {
			if got.dialect != dialect.SQLite {
				t.Errorf("parseTarget(%q).dialect = %q", tt.url, got.dialect)
			}
			for _, want := range []string{"foreign_keys%281%29", "journal_mode%28WAL%29", "busy_timeout%2810000%29", "synchronous%28NORMAL%29", "_txlock=immediate"} {
				if !strings.Contains(got.dsn, want) {
					t.Errorf("parseTarget(%q).dsn = %q, missing %s", tt.url, got.dsn, want)
				}
			}
		}
	}
}

func TestParseTargetKeepsUserPragma(t *testing.T) {
	got, err := parseTarget("sqlite:///tmp/x.db?_pragma=journal_mode(DELETE)", "")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got.dsn, "WAL") || !strings.Contains(got.dsn, "DELETE") {
		t.Errorf("dsn = %q, want the URL's journal_mode only", got.dsn)
	}
}

func TestParseTargetErrors(t *testing.T) {
	for _, u := range []string{"mysql://root:hunter2@h/db", "sqlite://", "/just/a/path.db"} {
		_, err := parseTarget(u, "")
		if err == nil {
			t.Errorf("parseTarget(%q): no error", u)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("parseTarget(%q) error leaks the password: %v", u, err)
		}
	}
	if _, err := parseTarget("", ""); err == nil {
		t.Error(`parseTarget("", ""): no error`)
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:hunter2@db:5432/pb?sslmode=disable", "postgres://u:xxxxx@db:5432/pb?sslmode=disable"},
		{"postgres://u@db/pb", "postgres://u@db/pb"},
		{"postgres://db/pb?user=u&password=hunter2", "postgres://db/pb?user=u&password=xxxxx"},
		{"host=db user=u password=hunter2 dbname=pb", "host=db user=u password=xxxxx dbname=pb"},
		{"host=db password='hun ter2' dbname=pb", "host=db password=xxxxx dbname=pb"},
		{"postgres://u:hun%ter2@db/pb", "postgres://u:xxxxx@db/pb"}, // not a valid URL
		{"sqlite:///var/lib/pb.db", "sqlite:///var/lib/pb.db"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRedactErr(t *testing.T) {
	inner := errors.New(`connect as u with "p@ss/w?rd" failed (p%40ss%2Fw%3Frd)`)
	err := redactErr(inner, "connect to", "postgres://u:p%40ss%2Fw%3Frd@db/pb")
	if strings.Contains(err.Error(), "p@ss/w?rd") || strings.Contains(err.Error(), "p%40ss") {
		t.Errorf("error leaks the password: %v", err)
	}
	if !errors.Is(err, inner) {
		t.Error("redacted error lost its chain")
	}
}
