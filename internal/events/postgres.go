package events

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// channel is the PostgreSQL notification channel of status changes.
const channel = "plugboard_credential_status"

// ConnectPostgres makes the bus publish through PostgreSQL NOTIFY and
// deliver what every replica publishes, by LISTENing on a dedicated
// connection until ctx ends. It reconnects with backoff when the
// connection drops.
func (b *Bus) ConnectPostgres(ctx context.Context, databaseURL string) error {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("events: parsing the database URL: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("events: connecting to PostgreSQL: %w", err)
	}
	if err := listenAll(ctx, conn); err != nil {
		_ = conn.Close(ctx)
		return fmt.Errorf("events: LISTEN: %w", err)
	}
	notifier, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		_ = conn.Close(ctx)
		return fmt.Errorf("events: connecting to PostgreSQL: %w", err)
	}
	np := &notifyPool{cfg: cfg, conn: notifier, mu: make(chan struct{}, 1)}
	b.mu.Lock()
	b.remote = np.notify
	b.remoteRevoke = np.send
	b.mu.Unlock()
	b.setListening(true)
	go b.listen(ctx, cfg, conn)
	go func() {
		<-ctx.Done()
		np.close()
	}()
	return nil
}

func (b *Bus) listen(ctx context.Context, cfg *pgx.ConnConfig, conn *pgx.Conn) {
	backoff := 100 * time.Millisecond
	for {
		n, err := conn.WaitForNotification(ctx)
		if err == nil && n.Channel == revocationChannel {
			b.receiveRevocation(n.Payload)
			continue
		}
		if err == nil {
			backoff = 100 * time.Millisecond
			var ev StatusChange
			if err := json.Unmarshal([]byte(n.Payload), &ev); err != nil {
				b.log.Warn("events: malformed notification", "err", err)
				continue
			}
			b.deliver(ev)
			continue
		}
		_ = conn.Close(context.Background())
		// Revocations can be missed from now on: caches are not trusted
		// until the listener is back (and are dropped then).
		b.setListening(false)
		if ctx.Err() != nil {
			return
		}
		b.log.Warn("events: lost the PostgreSQL listener; reconnecting", "err", err)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 10*time.Second)
			if conn, err = pgx.ConnectConfig(ctx, cfg); err != nil {
				continue
			}
			if err = listenAll(ctx, conn); err != nil {
				_ = conn.Close(context.Background())
				continue
			}
			b.setListening(true)
			break
		}
	}
}

// notifyPool holds the connection NOTIFY is sent on, reconnecting on error.
type notifyPool struct {
	cfg  *pgx.ConnConfig
	mu   chan struct{} // a one-slot semaphore guarding conn
	conn *pgx.Conn
}

// listenAll listens on every channel of the bus.
func listenAll(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, "LISTEN "+channel+"; LISTEN "+revocationChannel)
	return err
}

func (p *notifyPool) notify(ctx context.Context, ev StatusChange) error {
	payload, err := encode(ev)
	if err != nil {
		return err
	}
	return p.send(ctx, channel, payload)
}

// send notifies channel with payload.
func (p *notifyPool) send(ctx context.Context, channel, payload string) (err error) {
	p.mu <- struct{}{}
	defer func() { <-p.mu }()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if p.conn == nil || p.conn.IsClosed() {
		if p.conn, err = pgx.ConnectConfig(ctx, p.cfg); err != nil {
			return err
		}
	}
	_, err = p.conn.Exec(ctx, "SELECT pg_notify($1, $2)", channel, payload)
	if err != nil {
		_ = p.conn.Close(context.Background())
		p.conn = nil
	}
	return err
}

func (p *notifyPool) close() {
	p.mu <- struct{}{}
	defer func() { <-p.mu }()
	if p.conn != nil {
		_ = p.conn.Close(context.Background())
	}
}
