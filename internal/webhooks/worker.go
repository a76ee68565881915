// Package webhooks delivers the outbox of webhook events (written by
// internal/connection in the transaction of each change) to the endpoints
// organizations register, signed after the Standard Webhooks
// specification.
//
// A worker claims due deliveries with a lease: on PostgreSQL with
// FOR UPDATE SKIP LOCKED, so replicas sharing the outbox never claim the
// same row; on SQLite with one UPDATE ... RETURNING (one writer). A worker
// killed mid-delivery leaves its lease to run out, and the delivery is
// claimed again: delivery is at least once, and the webhook-id (the same on
// every attempt) lets a receiver drop duplicates.
//
// A failed attempt is retried with exponential backoff and jitter for up to
// MaxAge (24 h), then the delivery is FAILED; an endpoint whose deliveries
// have failed for DisableAfter (24 h) without a success is DISABLED with a
// reason its admin sees.
package webhooks

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"entgo.io/ent/dialect"

	"github.com/plugboard/plugboard/ent"
)

// Outcomes of one attempt, the label of the delivery counter.
const (
	OutcomeSucceeded = "succeeded"
	OutcomeRetrying  = "retrying"
	OutcomeFailed    = "failed"
)

// Opener decrypts a sealed secret bound to aad (the keyring).
type Opener interface {
	Decrypt(ctx context.Context, ciphertext, aad []byte) ([]byte, error)
}

// Config configures a Worker. Zero values take the defaults.
type Config struct {
	DB      *ent.Client
	Dialect string
	Keys    Opener
	// Client makes the calls to endpoints: the egress client, which
	// checks every address it dials and follows no redirect.
	Client *http.Client
	Log    *slog.Logger
	// Lease is how long a claim holds a delivery (default 30s): a worker
	// killed mid-delivery delays it by at most this.
	Lease time.Duration
	// Poll is how often the outbox is read when it had nothing due
	// (default 500ms).
	Poll time.Duration
	// Batch is the most deliveries one claim takes (default 64);
	// Concurrency the most attempts in flight (default 16).
	Batch       int
	Concurrency int
	// RetryBase is the first retry's delay (default 5s); each next one is
	// four times longer, at most MaxRetryDelay (default 4h), ±20%.
	RetryBase     time.Duration
	MaxRetryDelay time.Duration
	// MaxAge is how long a delivery is retried (default 24h);
	// DisableAfter how long an endpoint may fail before it is disabled
	// (default 24h).
	MaxAge       time.Duration
	DisableAfter time.Duration
	// Timeout bounds one attempt (default 15s).
	Timeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Observe counts each attempt by outcome; nil counts nothing.
	Observe func(outcome string)
}

func (c *Config) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&c.Lease, 30*time.Second)
	set(&c.Poll, 500*time.Millisecond)
	set(&c.RetryBase, 5*time.Second)
	set(&c.MaxRetryDelay, 4*time.Hour)
	set(&c.MaxAge, 24*time.Hour)
	set(&c.DisableAfter, 24*time.Hour)
	set(&c.Timeout, 15*time.Second)
	if c.Batch <= 0 {
		c.Batch = 64
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Client == nil {
		c.Client = http.DefaultClient
	}
	if c.Observe == nil {
		c.Observe = func(string) {}
	}
}

// Worker delivers due webhook deliveries until it is closed.
type Worker struct {
	cfg    Config
	stop   context.CancelFunc
	done   chan struct{}
	wake   chan struct{}
	closed sync.Once
}

// New returns a worker over cfg; Start runs it.
func New(cfg Config) *Worker {
	cfg.defaults()
	return &Worker{cfg: cfg, done: make(chan struct{}), wake: make(chan struct{}, 1)}
}

func (w *Worker) now() time.Time { return w.cfg.Now().UTC() }

// Start runs the worker in the background until Close.
func (w *Worker) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	w.stop = cancel
	go func() {
		defer close(w.done)
		w.run(ctx)
	}()
}

// Wake makes a sleeping worker read the outbox now.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Close stops the worker and waits for the attempts in flight; their
// deliveries are claimed again once their lease runs out.
func (w *Worker) Close() {
	w.closed.Do(func() {
		if w.stop == nil {
			return
		}
		w.stop()
		<-w.done
	})
}

func (w *Worker) run(ctx context.Context) {
	for ctx.Err() == nil {
		n, err := w.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			w.cfg.Log.Warn("delivering webhooks", "err", err)
		}
		if n == w.cfg.Batch && err == nil {
			continue
		}
		t := time.NewTimer(w.cfg.Poll)
		select {
		case <-ctx.Done():
		case <-w.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// RunOnce claims the due deliveries (at most Batch) and attempts each,
// Concurrency at a time. It returns how many it claimed.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	ids, err := w.claim(ctx)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	jobs, err := w.load(ctx, ids)
	if err != nil {
		return len(ids), err
	}
	sem := make(chan struct{}, w.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, j := range jobs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			w.attempt(ctx, j)
		}()
	}
	wg.Wait()
	return len(ids), nil
}

// isPostgres reports whether the outbox is on PostgreSQL.
func (w *Worker) isPostgres() bool { return w.cfg.Dialect == dialect.Postgres }
