package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/webhookdelivery"
	"github.com/plugboard/plugboard/ent/webhookendpoint"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/egress"
	"github.com/plugboard/plugboard/internal/secrets/sealed"
)

// job is one claimed delivery with its event and endpoint.
type job struct {
	d  *ent.WebhookDelivery
	ev *ent.WebhookEvent
	ep *ent.WebhookEndpoint
}

// load reads the claimed deliveries with their events and endpoints, in
// three queries for the whole claim.
func (w *Worker) load(ctx context.Context, ids []int) ([]job, error) {
	ds, err := w.cfg.DB.WebhookDelivery.Query().Where(webhookdelivery.IDIn(ids...)).
		WithEvent().WithEndpoint().All(auth.SystemContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("reading claimed webhook deliveries: %w", err)
	}
	out := make([]job, 0, len(ds))
	for _, d := range ds {
		out = append(out, job{d: d, ev: d.Edges.Event, ep: d.Edges.Endpoint})
	}
	return out, nil
}

// result is what one attempt found.
type result struct {
	code     int
	duration time.Duration
	err      string
}

func (r result) ok() bool { return r.err == "" && r.code >= 200 && r.code < 300 }

// attempt sends j once and records the outcome. A worker stopping
// mid-attempt records nothing: the lease runs out and the delivery is
// claimed again.
func (w *Worker) attempt(ctx context.Context, j job) {
	if j.ep.Status != webhookendpoint.StatusACTIVE {
		w.finish(ctx, j, result{err: "endpoint disabled: " + j.ep.DisabledReason}, true)
		return
	}
	sigs, err := w.signatures(ctx, j)
	if err != nil {
		w.cfg.Log.Error("signing a webhook", "endpoint", j.ep.ID, "err", err)
		w.finish(ctx, j, result{err: "plugboard could not sign the event"}, false)
		return
	}
	r := w.send(ctx, j, sigs)
	if ctx.Err() != nil {
		return
	}
	w.finish(ctx, j, r, false)
}

// signatures signs j's event, now, with the endpoint's secret and, during
// a rotation's overlap, its previous one too: webhook-signature then
// carries both.
func (w *Worker) signatures(ctx context.Context, j job) (header, error) {
	now := w.now()
	h := header{id: j.ev.MessageID, ts: now}
	secrets := []struct {
		ct  []byte
		aad []byte
	}{{j.ep.Secret, sealed.WebhookSecret.AAD(j.ep.ID)}}
	if p := j.ep.PreviousSecret; p != nil && j.ep.PreviousExpiresAt != nil && now.Before(*j.ep.PreviousExpiresAt) {
		secrets = append(secrets, struct {
			ct  []byte
			aad []byte
		}{*p, sealed.WebhookPreviousSecret.AAD(j.ep.ID)})
	}
	var sigs []string
	for _, s := range secrets {
		secret, err := w.cfg.Keys.Decrypt(ctx, s.ct, s.aad)
		if err != nil {
			return h, err
		}
		wh, err := standardwebhooks.NewWebhook(string(secret))
		if err != nil {
			return h, err
		}
		sig, err := wh.Sign(h.id, now, []byte(j.ev.Payload))
		if err != nil {
			return h, err
		}
		sigs = append(sigs, sig)
	}
	h.signature = strings.Join(sigs, " ")
	return h, nil
}

// header is the Standard Webhooks headers of one attempt.
type header struct {
	id        string
	ts        time.Time
	signature string
}

// send POSTs the event to the endpoint and reads the answer's status.
func (w *Worker) send(ctx context.Context, j job, h header) result {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.ep.URL, bytes.NewReader([]byte(j.ev.Payload)))
	if err != nil {
		return result{err: "the endpoint URL is not valid"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "plugboard-webhooks")
	req.Header.Set(standardwebhooks.HeaderWebhookID, h.id)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(h.ts.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, h.signature)
	start := time.Now()
	res, err := w.cfg.Client.Do(req)
	if err != nil {
		return result{duration: time.Since(start), err: sendError(err)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	_ = res.Body.Close()
	r := result{code: res.StatusCode, duration: time.Since(start)}
	if !r.ok() {
		r.err = fmt.Sprintf("the endpoint answered %d", res.StatusCode)
	}
	return r
}

// sendError says why a call failed, for the admin; no URL query or secret.
func sendError(err error) string {
	var denied *egress.DeniedError
	switch {
	case errors.As(err, &denied):
		return "plugboard may not call this address: " + denied.Reason
	case errors.Is(err, context.DeadlineExceeded):
		return "the endpoint did not answer in time"
	}
	return "the endpoint could not be reached"
}

// finish records r: SUCCEEDED, or a retry after backoff, or FAILED once the
// delivery is MaxAge old (or at once, final). It keeps the endpoint's
// failing_since and disables an endpoint failing for DisableAfter.
func (w *Worker) finish(ctx context.Context, j job, r result, final bool) {
	ctx = auth.SystemContext(context.WithoutCancel(ctx))
	now := w.now()
	u := w.cfg.DB.WebhookDelivery.UpdateOneID(j.d.ID).ClearLeaseUntil().
		SetAttempts(j.d.Attempts + 1).SetLastError(r.err).SetUpdatedAt(now)
	if r.code != 0 {
		u.SetLastStatusCode(r.code)
	}
	if r.duration > 0 || r.code != 0 {
		u.SetLastDurationMs(int(r.duration.Milliseconds()))
	}
	outcome := OutcomeSucceeded
	switch {
	case r.ok():
		u.SetStatus(webhookdelivery.StatusSUCCEEDED).SetDeliveredAt(now).ClearNextAttemptAt()
	case final || now.Sub(j.d.CreatedAt) >= w.cfg.MaxAge:
		outcome = OutcomeFailed
		u.SetStatus(webhookdelivery.StatusFAILED).ClearNextAttemptAt()
	default:
		outcome = OutcomeRetrying
		u.SetNextAttemptAt(now.Add(w.backoff(j.d.Attempts + 1)))
	}
	if err := u.Exec(ctx); err != nil {
		w.cfg.Log.Warn("recording a webhook attempt", "delivery", j.d.ID, "err", err)
		return
	}
	w.cfg.Observe(outcome)
	if !final {
		w.endpointHealth(ctx, j.ep, r, now)
	}
}

// endpointHealth clears an endpoint's failing_since on a success, sets it
// on a first failure, and disables the endpoint once it has failed for
// DisableAfter.
func (w *Worker) endpointHealth(ctx context.Context, ep *ent.WebhookEndpoint, r result, now time.Time) {
	db := w.cfg.DB.WebhookEndpoint
	var err error
	switch {
	case r.ok():
		if ep.FailingSince != nil {
			err = db.Update().Where(webhookendpoint.ID(ep.ID)).ClearFailingSince().Exec(ctx)
		}
	case ep.FailingSince == nil:
		err = db.Update().Where(webhookendpoint.ID(ep.ID), webhookendpoint.FailingSinceIsNil()).
			SetFailingSince(now).Exec(ctx)
	case now.Sub(*ep.FailingSince) >= w.cfg.DisableAfter:
		reason := fmt.Sprintf("disabled by plugboard: every delivery failed since %s (last: %s); fix the endpoint and set it ACTIVE again",
			ep.FailingSince.UTC().Format(time.RFC3339), r.err)
		err = db.Update().Where(webhookendpoint.ID(ep.ID), webhookendpoint.StatusEQ(webhookendpoint.StatusACTIVE)).
			SetStatus(webhookendpoint.StatusDISABLED).SetDisabledReason(reason).Exec(ctx)
		if err == nil {
			w.cfg.Log.Warn("webhook endpoint disabled", "endpoint", ep.ID, "failing_since", *ep.FailingSince)
		}
	}
	if err != nil {
		w.cfg.Log.Warn("recording a webhook endpoint's health", "endpoint", ep.ID, "err", err)
	}
}

// backoff is the delay before attempt n+1: RetryBase × 4^(n-1), at most
// MaxRetryDelay, with ±20% jitter so endpoints that failed together are
// not retried together.
func (w *Worker) backoff(n int) time.Duration {
	d := w.cfg.RetryBase
	for i := 1; i < n && d < w.cfg.MaxRetryDelay; i++ {
		d *= 4
	}
	d = min(d, w.cfg.MaxRetryDelay)
	jitter := 0.8 + 0.4*rand.Float64()
	return time.Duration(float64(d) * jitter)
}
