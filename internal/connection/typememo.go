package connection

import (
	"context"
	"sync"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connection"
)

// typeMemo remembers, for one request, the connection type of each
// connection, so listing credentials costs a constant number of statements
// instead of one per credential.
type typeMemo struct {
	mu     sync.Mutex
	byConn map[int]*typeEntry
}

type typeEntry struct {
	once sync.Once
	conn *ent.Connection
	ct   *ent.ConnectionType
	err  error
}

type typeMemoKey struct{}

// WithTypeMemo returns ctx with a memo of connection types for one request.
func WithTypeMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, typeMemoKey{}, &typeMemo{byConn: map[int]*typeEntry{}})
}

func (m *typeMemo) entry(connID int) *typeEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byConn[connID]
	if !ok {
		e = &typeEntry{}
		m.byConn[connID] = e
	}
	return e
}

// PreloadTypes loads the connection types of creds in one query into the
// request's memo.
func (s *Service) PreloadTypes(ctx context.Context, creds []*ent.Credential) error {
	m, _ := ctx.Value(typeMemoKey{}).(*typeMemo)
	if m == nil || len(creds) == 0 {
		return nil
	}
	ids := make([]int, 0, len(creds))
	seen := map[int]bool{}
	for _, c := range creds {
		if !seen[c.ConnectionID] {
			seen[c.ConnectionID] = true
			ids = append(ids, c.ConnectionID)
		}
	}
	conns, err := s.DB.Connection.Query().Where(connection.IDIn(ids...)).WithType().All(ctx)
	if err != nil {
		return err
	}
	for _, c := range conns {
		ct := c.Edges.Type
		// An entry someone already loaded keeps its value.
		e := m.entry(c.ID)
		e.once.Do(func() { e.conn, e.ct = c, ct })
	}
	return nil
}

// connectionOf returns a credential's connection and its type: from its
// loaded edges, the request's memo, or one query.
func (s *Service) connectionOf(ctx context.Context, c *ent.Credential) (*ent.Connection, *ent.ConnectionType, error) {
	if conn, err := c.Edges.ConnectionOrErr(); err == nil {
		if ct, err := conn.Edges.TypeOrErr(); err == nil {
			return conn, ct, nil
		}
	}
	load := func() (*ent.Connection, *ent.ConnectionType, error) {
		conn, err := s.DB.Connection.Query().Where(connection.ID(c.ConnectionID)).WithType().Only(ctx)
		if err != nil {
			return nil, nil, err
		}
		return conn, conn.Edges.Type, nil
	}
	m, _ := ctx.Value(typeMemoKey{}).(*typeMemo)
	if m == nil {
		return load()
	}
	e := m.entry(c.ConnectionID)
	e.once.Do(func() { e.conn, e.ct, e.err = load() })
	return e.conn, e.ct, e.err
}
