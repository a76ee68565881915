package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/plugboard/plugboard/graph"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection"
	"github.com/plugboard/plugboard/internal/globalid"
)

// RuntimeSource is what the runtime read needs: the domain's read of a
// credential for a runtime. connection.Service implements it.
type RuntimeSource interface {
	ReadForRuntime(ctx context.Context, id int, minValidity time.Duration) (*connection.RuntimeRead, error)
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
// least minValidity seconds (default: the refresh margin). The domain
// decides who may read and what is read (connection.ReadForRuntime); this
// handler parses the request and writes the answer. It lives outside the
// GraphQL schema: it is the one place secrets leave plugboard.
func runtimeHandler(src RuntimeSource, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		ctx := r.Context()
		if err := connection.MayReadRuntime(ctx); err != nil {
			refuseRuntimeRead(w, err)
			return
		}
		id, minValidity, status, msg := parseRuntimeRead(r)
		if status != 0 {
			writeRuntimeError(w, status, runtimeCodes[status], msg)
			return
		}
		read, err := src.ReadForRuntime(ctx, id, minValidity)
		if err != nil {
			writeRuntimeFailure(w, log, id, err)
			return
		}
		writeJSON(w, http.StatusOK, runtimeBody(read))
	})
}

// runtimeCodes are the error codes of the request's own faults.
var runtimeCodes = map[int]string{
	http.StatusNotFound:   graph.CodeNotFound,
	http.StatusBadRequest: graph.CodeValidationFailed,
}

// parseRuntimeRead reads the credential id and minValidity of r; a non-zero
// status and its message when they are not usable.
func parseRuntimeRead(r *http.Request) (int, time.Duration, int, string) {
	id, err := globalid.Decode(r.PathValue("id"))
	if err != nil {
		return 0, 0, http.StatusNotFound, "not found"
	}
	var minValidity time.Duration
	if s := r.URL.Query().Get("minValidity"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || time.Duration(n)*time.Second > maxMinValidity {
			return 0, 0, http.StatusBadRequest, "minValidity is a number of seconds from 0 to 3600"
		}
		minValidity = time.Duration(n) * time.Second
	}
	return id, minValidity, 0, ""
}

// runtimeBody is the JSON answer of a read.
func runtimeBody(read *connection.RuntimeRead) runtimeResponse {
	c := read.Credential
	res := runtimeResponse{
		ID: globalid.Encode(c.ID), Type: read.Type.Key, Status: string(c.Status),
		IsTest: c.IsTest, Values: read.Values, Version: c.Version,
	}
	if tok := read.Token; tok != nil {
		rt := &runtimeToken{AccessToken: tok.AccessToken, TokenType: tok.TokenType}
		if !tok.Expiry.IsZero() {
			e := tok.Expiry.UTC()
			rt.ExpiresAt = &e
		}
		res.Token = rt
	}
	return res
}

// writeRuntimeFailure answers a refused read with the HTTP status of the
// domain's error: a token that cannot be had is 503 unless the caller must
// act (409) or the credential is gone (404).
func writeRuntimeFailure(w http.ResponseWriter, log *slog.Logger, id int, err error) {
	var notLive *connection.NotLiveError
	if errors.As(err, &notLive) {
		writeRuntimeError(w, http.StatusConflict, graph.CodeConflict, notLive.Error())
		return
	}
	code, msg := graph.Classify(err)
	status := http.StatusInternalServerError
	var tokErr *connection.TokenError
	if errors.As(err, &tokErr) {
		status = http.StatusServiceUnavailable
		if code == graph.CodeInternal {
			log.Error("runtime read: access token", "credential", id, "err", err)
		}
	}
	switch code {
	case graph.CodeUnauthenticated:
		status = http.StatusUnauthorized
	case graph.CodeForbidden:
		status = http.StatusForbidden
	case graph.CodeNotFound:
		status = http.StatusNotFound
	case graph.CodeOnPremAgentDisconnected:
		status = http.StatusServiceUnavailable
	case graph.CodeConflict, graph.CodeValidationFailed:
		if tokErr != nil {
			status = http.StatusConflict
		}
	}
	writeRuntimeError(w, status, code, msg)
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
