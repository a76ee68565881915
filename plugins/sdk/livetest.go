package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// This file holds helpers for a provider's Test: the steps most live tests
// share, so that a Test reads as what it checks.

// httpTestTimeout bounds CheckHTTP when its context has no deadline.
const httpTestTimeout = 30 * time.Second

// maxAnswerBody is how much of a response body CheckHTTP reads.
const maxAnswerBody = 1 << 20

// InvalidValues returns the answer a Test gives when ds (the diagnostics of
// the values it was asked to test) holds an ERROR: not OK, with the first
// error's summary. It returns nil when ds holds no ERROR. Test should check
// the values before it calls out:
//
//	if resp := sdk.InvalidValues(sdk.ValidateValues(&ct, values)); resp != nil {
//		return resp, nil
//	}
func InvalidValues(ds []Diagnostic) *TestResponse {
	for _, d := range ds {
		if d.Severity == SeverityError {
			return &TestResponse{OK: false, Message: "The values are not valid: " + d.Summary}
		}
	}
	return nil
}

// CheckHTTP sends req for a live test and returns answer's verdict on the
// response: its status code and its body (at most the first MiB).
//
// A call that gets no response is answered here, not OK, with a message
// that names the host of the request: "<host> did not answer in time." when
// ctx ends first, "Could not reach <host>: <reason>." otherwise. The reason
// never holds the request's URL, which may carry a credential. answer may
// return nil for a status it has nothing to say about; CheckHTTP then
// answers not OK, "<host> answered <status code> <status text>.".
//
// req is sent with ctx (its own context is replaced), bounded to 30 seconds
// when ctx has no deadline; a nil client means http.DefaultClient. What
// answer quotes from the body is returned as it is: pass such a message
// through Redact.
func CheckHTTP(ctx context.Context, client *http.Client, req *http.Request, answer func(status int, body []byte) *TestResponse) *TestResponse {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, httpTestTimeout)
		defer cancel()
	}
	if client == nil {
		client = http.DefaultClient
	}
	host := req.URL.Host
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		return noAnswer(ctx, host, "Could not reach "+host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBody))
	if err != nil {
		return noAnswer(ctx, host, "Could not read the answer of "+host, err)
	}
	if verdict := answer(resp.StatusCode, body); verdict != nil {
		return verdict
	}
	return &TestResponse{OK: false, Message: fmt.Sprintf("%s answered %d %s.", host, resp.StatusCode, http.StatusText(resp.StatusCode))}
}

// noAnswer is the verdict on a call that failed with err.
func noAnswer(ctx context.Context, host, what string, err error) *TestResponse {
	if ctx.Err() != nil {
		return &TestResponse{OK: false, Message: host + " did not answer in time."}
	}
	var urlErr *url.Error // its text quotes the URL
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	return &TestResponse{OK: false, Message: what + ": " + strings.TrimSuffix(err.Error(), ".") + "."}
}

// Redact returns msg with every non-empty secret replaced by "[redacted]":
// a last guard for a message that quotes an error or a service's answer,
// in case one ever echoes a token or a password.
func Redact(msg string, secrets ...string) string {
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}
