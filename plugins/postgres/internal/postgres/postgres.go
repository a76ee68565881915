// Package postgres implements the PostgreSQL plugin: one BASIC connection
// type, tested by connecting and running SELECT 1.
package postgres

import (
	"context"
	_ "embed" // the icon
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/plugboard/plugboard/plugins/sdk"
)

// icon is the type's icon, served by plugboard.
//
//go:embed icon.svg
var icon []byte

// TypeKey is the key of the connection type.
const TypeKey = "postgres.basic"

// Version is the plugin version.
const Version = "0.1.0"

// testTimeout bounds Test when the host gives no deadline.
const testTimeout = 30 * time.Second

// hostPattern accepts a host name, an IPv4 address or a bare IPv6 address;
// not a port, a URL, a list of hosts or a Unix socket directory.
const hostPattern = `[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*`

// New returns the PostgreSQL plugin.
func New() *sdk.Plugin {
	return &sdk.Plugin{Key: "postgres", Version: Version, Types: []sdk.Type{
		{ConnectionType: connectionType, Validate: validate, Test: testConnection},
	}}
}

var sslModes = []sdk.Option{
	{Value: "disable", Label: "disable: no TLS"},
	{Value: "allow", Label: "allow: TLS if the server insists"},
	{Value: "prefer", Label: "prefer: TLS if the server offers it"},
	{Value: "require", Label: "require: TLS, any certificate"},
	{Value: "verify-ca", Label: "verify-ca: TLS, a trusted certificate"},
	{Value: "verify-full", Label: "verify-full: TLS, a trusted certificate for the host"},
}

var connectionType = sdk.ConnectionType{
	Key:         TypeKey,
	Label:       "PostgreSQL",
	Description: "Connects to a PostgreSQL database with a user name and password.",
	IconURL:     "https://www.postgresql.org/favicon.ico",
	IconSVG:     icon,
	AuthKind:    sdk.AuthBasic,
	Inputs: []sdk.Input{
		{Key: "host", Label: "Host", Type: sdk.InputString, Required: true, OnPremControlled: true,
			Pattern: hostPattern, PatternMessage: "Enter one host name or IP address, such as db.example.com: no port, URL or socket path.",
			Placeholder: "db.example.com", Description: "Host name or IP address of the server."},
		{Key: "port", Label: "Port", Type: sdk.InputNumber, Default: "5432", OnPremControlled: true, Pattern: `[0-9]+`,
			PatternMessage: "Port must be a whole number between 1 and 65535, such as 5432."},
		{Key: "database", Label: "Database", Type: sdk.InputString, Required: true, Placeholder: "app"},
		{Key: "user", Label: "User", Type: sdk.InputString, Required: true},
		{Key: "password", Label: "Password", Type: sdk.InputPassword, Secret: true},
		{Key: "sslmode", Label: "TLS mode", Type: sdk.InputPicklist, Default: "prefer", Options: sslModes,
			Description: "As libpq's sslmode; verify-full is the safe choice over the internet."},
	},
}

// validate checks the range of a port that is a whole number (the
// declared pattern words any other value).
func validate(values map[string]string) []sdk.Diagnostic {
	port := values["port"]
	if port == "" || strings.Trim(port, "0123456789") != "" {
		return nil
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return []sdk.Diagnostic{sdk.ErrorDiag("port", "Port must be between 1 and 65535.")}
	}
	return nil
}

// testConnection connects and runs SELECT 1.
func testConnection(ctx context.Context, req *sdk.TestRequest) (*sdk.TestResponse, error) {
	values := req.Values
	addr := net.JoinHostPort(values["host"], values["port"])
	cfg, err := config(values)
	if err != nil {
		return &sdk.TestResponse{OK: false, Message: "The connection settings are not usable: " + describe(err)}, nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, testTimeout)
		defer cancel()
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return &sdk.TestResponse{OK: false, Message: failure(ctx, addr, err)}, nil
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return &sdk.TestResponse{OK: false, Message: "Connected, but SELECT 1 failed: " + describe(err)}, nil
	}
	msg := fmt.Sprintf("Connected to %s as %s.", addr, values["user"])
	if v := conn.PgConn().ParameterStatus("server_version"); v != "" {
		msg = fmt.Sprintf("Connected to PostgreSQL %s at %s as %s.", v, addr, values["user"])
	}
	return &sdk.TestResponse{OK: true, Message: msg}, nil
}

// config builds the pgx configuration from the values alone. The password
// never enters the connection URL (so no pgx error can quote it), and the
// URL sets what the plugin process's environment and home directory would
// otherwise supply: a customer's server must not receive the operator's
// PGPASSWORD, ~/.pgpass entry or ~/.postgresql client certificate.
func config(values map[string]string) (*pgx.ConnConfig, error) {
	q := url.Values{}
	q.Set("sslmode", values["sslmode"])
	q.Set("sslcertmode", "disable")
	q.Set("application_name", "plugboard")
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(values["user"]),
		Host:     net.JoinHostPort(values["host"], values["port"]),
		Path:     "/" + values["database"],
		RawQuery: q.Encode(),
	}
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, err
	}
	cfg.Password = values["password"] // also overrides PGPASSWORD and ~/.pgpass
	return cfg, nil
}

// failure says why a connection failed without quoting pgx's error
// wholesale.
func failure(ctx context.Context, addr string, err error) string {
	var pgErr *pgconn.PgError
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &pgErr):
		return fmt.Sprintf("PostgreSQL at %s refused the connection: %s (SQLSTATE %s).", addr, pgErr.Message, pgErr.Code)
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("Timed out connecting to %s.", addr)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("Cannot resolve the host of %s.", addr)
	case errors.As(err, &opErr):
		return fmt.Sprintf("Cannot reach %s: %v.", addr, opErr.Err)
	}
	return fmt.Sprintf("Cannot connect to %s: %s.", addr, describe(err))
}

// describe returns the innermost message of a pgx error: the wrappers
// repeat the user, database and address. Of joined errors (one per
// attempt, as sslmode=prefer tries TLS then plain text) it follows the
// last attempt.
func describe(err error) string {
	for {
		var next error
		switch e := err.(type) {
		case interface{ Unwrap() error }:
			next = e.Unwrap()
		case interface{ Unwrap() []error }:
			if errs := e.Unwrap(); len(errs) > 0 {
				next = errs[len(errs)-1]
			}
		}
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
