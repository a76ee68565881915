package store

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"

	"entgo.io/ent/dialect"
)

// target is a parsed database URL: what to hand to database/sql, and how to
// describe it in logs without leaking a password.
type target struct {
	driver  string // database/sql driver name: "sqlite" or "pgx"
	dialect string // ent dialect: dialect.SQLite or dialect.Postgres
	dsn     string // data source name for sql.Open
	path    string // SQLite file path, when known (created 0600 beforehand)
	memory  bool   // SQLite in-memory database: one connection only
}

// sqlitePragmas are applied on every new SQLite connection, unless the URL
// already sets the same pragma. busy_timeout makes a writer wait for the
// single write lock instead of failing with SQLITE_BUSY.
var sqlitePragmas = []struct{ name, value string }{
	{"busy_timeout", "10000"},
	{"foreign_keys", "1"},
	{"journal_mode", "WAL"},
	{"synchronous", "NORMAL"},
}

// parseTarget resolves databaseURL (empty: <dataDir>/plugboard.db).
func parseTarget(databaseURL, dataDir string) (target, error) {
	u := strings.TrimSpace(databaseURL)
	lower := strings.ToLower(u)
	switch {
	case u == "":
		if dataDir == "" {
			return target{}, errors.New("no database URL and no data directory")
		}
		p := filepath.Join(dataDir, "plugboard.db")
		return sqliteTarget(p, p, "")
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		return target{driver: "pgx", dialect: dialect.Postgres, dsn: u}, nil
	case strings.HasPrefix(lower, "sqlite:"), strings.HasPrefix(lower, "sqlite3:"):
		rest := u[strings.IndexByte(u, ':')+1:]
		rest = strings.TrimPrefix(rest, "//") // sqlite:///abs/path.db → /abs/path.db
		p, query, _ := strings.Cut(rest, "?")
		if p == "" {
			return target{}, fmt.Errorf("database URL %q has no file path", RedactURL(u))
		}
		if p == ":memory:" {
			return sqliteTarget("file::memory:", "", query)
		}
		return sqliteTarget(p, p, query)
	case strings.HasPrefix(lower, "file:"):
		name, query, _ := strings.Cut(u, "?")
		return sqliteTarget(name, "", query)
	default:
		//lint:ignore ST1005 it ends with the scheme "file:", not punctuation
		return target{}, fmt.Errorf("unsupported database URL %q: want postgres://, postgresql://, sqlite:///path or file:", RedactURL(u))
	}
}

// sqliteTarget builds a modernc.org/sqlite DSN from a file name (a path or a
// file: URI) and the URL's own query, adding the default pragmas.
func sqliteTarget(name, path, query string) (target, error) {
	q, err := url.ParseQuery(query)
	if err != nil {
		return target{}, fmt.Errorf("invalid SQLite URL parameters: %w", err)
	}
	have := map[string]bool{}
	for _, p := range q["_pragma"] {
		n, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(p)), "(")
		n, _, _ = strings.Cut(n, "=")
		have[strings.TrimSpace(n)] = true
	}
	for _, p := range sqlitePragmas {
		if !have[p.name] {
			q.Add("_pragma", p.name+"("+p.value+")")
		}
	}
	// Take the write lock when a transaction begins: a deferred transaction
	// that reads and then writes can fail with SQLITE_BUSY without waiting.
	if q.Get("_txlock") == "" {
		q.Set("_txlock", "immediate")
	}
	memory := strings.Contains(name, ":memory:") || q.Get("mode") == "memory"
	return target{
		driver:  "sqlite",
		dialect: dialect.SQLite,
		dsn:     name + "?" + q.Encode(),
		path:    path,
		memory:  memory,
	}, nil
}

var (
	// userinfoPassword matches "scheme://user:password@" in strings that
	// net/url cannot parse.
	userinfoPassword = regexp.MustCompile(`(://[^:/?#@\s]*:)[^@/?#\s]*@`)
	// keywordPassword matches password=... in key/value DSNs and queries.
	keywordPassword = regexp.MustCompile(`(?i)(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)`)
)

// RedactURL returns databaseURL with any password replaced by "xxxxx", for
// errors and logs. It handles URLs (user:password@, ?password=) and
// key/value connection strings (password=...).
func RedactURL(databaseURL string) string {
	s := databaseURL
	if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Opaque == "" {
		s = u.Redacted()
	} else {
		s = userinfoPassword.ReplaceAllString(s, "${1}xxxxx@")
	}
	return keywordPassword.ReplaceAllString(s, "${1}xxxxx")
}

// urlPassword returns the password in databaseURL, if any, so that error
// texts from drivers can be scrubbed of it.
func urlPassword(databaseURL string) []string {
	var out []string
	if u, err := url.Parse(databaseURL); err == nil {
		if p, ok := u.User.Password(); ok && p != "" {
			out = append(out, p)
		}
		for _, k := range []string{"password", "sslpassword"} {
			if p := u.Query().Get(k); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// redactedError hides secrets in an error's text while keeping the chain
// for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactErr wraps err as "store: <what> <redacted URL>: <err>" and removes
// every password of databaseURL from the message.
func redactErr(err error, what, databaseURL string) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf("store: %s %s: %v", what, RedactURL(databaseURL), err)
	for _, p := range urlPassword(databaseURL) {
		msg = strings.ReplaceAll(msg, p, "xxxxx")
		if esc := url.QueryEscape(p); esc != p {
			msg = strings.ReplaceAll(msg, esc, "xxxxx")
		}
		if esc := url.PathEscape(p); esc != p {
			msg = strings.ReplaceAll(msg, esc, "xxxxx")
		}
	}
	return &redactedError{msg: msg, err: err}
}
