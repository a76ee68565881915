package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/graph"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection"
	"github.com/plugboard/plugboard/internal/globalid"
)

// RuntimeToken is the access token handed to an integration runtime.
type RuntimeToken struct {
	AccessToken string
	TokenType   string
	Expiry      time.Time
}

// RuntimeSource is what the runtime read needs: a credential's resolved
// values, a fresh access token for OAuth 2.0 types, and the audit log.
type RuntimeSource interface {
	// Resolved returns the type and the resolved values (secrets included).
	Resolved(ctx context.Context, c *ent.Credential) (*ent.ConnectionType, map[string]string, error)
	// AccessToken returns an access token valid for at least minValidity,
	// refreshing it first when needed.
	AccessToken(ctx context.Context, credentialID int, minValidity time.Duration) (*RuntimeToken, error)
	// AuditRuntimeRead records one read.
	AuditRuntimeRead(ctx context.Context, c *ent.Credential) error
}

// runtimeResponse is the runtime read's JSON body.
type runtimeResponse struct {
	ID      string            `json:"id"`
	Type    string            `json:"type"`
	Status  string            `json:"status"`
	IsTest  bool              `json:"isTest"`
	Values  map[string]string `json:"values"`
	Token   *runtimeToken     `json:"token,omitempty"`
	Version int               `json:"version"`
}

type runtimeToken struct {
	AccessToken string     `json:"accessToken"`
	TokenType   string     `json:"tokenType,omitempty"`
	ExpiresAt   *time.Time `json:"expiresAt,omitempty"`
}

const maxMinValidity = time.Hour

// runtimeHandler serves GET /runtime/v1/credentials/{id}: a credential's
// decrypted values and, for OAuth 2.0 types, an access token valid for at
// least minValidity seconds (default: the refresh margin). Only RUNTIME
// tokens may read; every read is audited. This is the one place secrets
// leave plugboard, so it lives outside the GraphQL schema.
func runtimeHandler(db *ent.Client, src RuntimeSource, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		ctx := r.Context()
		if _, err := connection.Authorize(ctx, connection.ReadRuntimeValues); err != nil {
			refuseRuntimeRead(w, err)
			return
		}
		id, err := globalid.Decode(r.PathValue("id"))
		if err != nil {
			writeRuntimeError(w, http.StatusNotFound, graph.CodeNotFound, "not found")
			return
		}
		var minValidity time.Duration
		if s := r.URL.Query().Get("minValidity"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || time.Duration(n)*time.Second > maxMinValidity {
				writeRuntimeError(w, http.StatusBadRequest, graph.CodeValidationFailed, "minValidity is a number of seconds from 0 to 3600")
				return
			}
			minValidity = time.Duration(n) * time.Second
		}
		c, err := db.Credential.Get(ctx, id)
		if err != nil {
			writeRuntimeError(w, http.StatusNotFound, graph.CodeNotFound, "not found")
			return
		}
		ct, values, err := src.Resolved(ctx, c)
		if err != nil {
			log.Error("runtime read: resolving values", "credential", c.ID, "err", err)
			writeRuntimeError(w, http.StatusInternalServerError, graph.CodeInternal, "internal error")
			return
		}
		res := runtimeResponse{
			ID: globalid.Encode(c.ID), Type: ct.Key, Status: string(c.Status),
			IsTest: c.IsTest, Values: values, Version: c.Version,
		}
		if ct.AuthKind == connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE || ct.AuthKind == connectiontype.AuthKindOAUTH2_CLIENT_CREDENTIALS {
			tok, err := src.AccessToken(ctx, c.ID, minValidity)
			if err != nil {
				code, msg := graph.Classify(err)
				status := http.StatusServiceUnavailable
				switch code {
				case graph.CodeConflict, graph.CodeValidationFailed:
					status = http.StatusConflict
				case graph.CodeNotFound:
					status = http.StatusNotFound
				case graph.CodeInternal:
					log.Error("runtime read: access token", "credential", c.ID, "err", err)
				}
				writeRuntimeError(w, status, code, msg)
				return
			}
			rt := &runtimeToken{AccessToken: tok.AccessToken, TokenType: tok.TokenType}
			if !tok.Expiry.IsZero() {
				e := tok.Expiry.UTC()
				rt.ExpiresAt = &e
			}
			res.Token = rt
		} else if c.Status != credential.StatusACTIVE {
			writeRuntimeError(w, http.StatusConflict, graph.CodeConflict, "the credential is "+string(c.Status)+": "+c.StatusDetail)
			return
		}
		if err := src.AuditRuntimeRead(ctx, c); err != nil {
			log.Error("runtime read: audit", "credential", c.ID, "err", err)
			writeRuntimeError(w, http.StatusInternalServerError, graph.CodeInternal, "internal error")
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}

func writeRuntimeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// refuseRuntimeRead answers a read the authorization table refused: 401
// without a viewer, 403 saying who may read.
func refuseRuntimeRead(w http.ResponseWriter, err error) {
	var refused *connection.Refusal
	if errors.As(err, &refused) {
		writeRuntimeError(w, http.StatusForbidden, graph.CodeForbidden, refused.Need)
		return
	}
	writeRuntimeError(w, http.StatusUnauthorized, graph.CodeUnauthenticated, auth.ErrUnauthenticated.Error())
}
