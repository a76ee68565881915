package connection

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connection"
	"github.com/plugboard/plugboard/ent/connectiontype"
)

// TypeCacheTTL bounds how long a connection type read from the store is
// served from memory on the runtime read. A catalog sync in this process
// drops every entry at once (the catalog's version); the bound covers
// another replica syncing a different plugin version.
const TypeCacheTTL = 2 * time.Second

// typeCache keeps the connection types the runtime read needs, so a read
// costs no query of the catalog. Entries are shared: nobody may change one.
type typeCache struct {
	mu      sync.Mutex
	version uint64
	byID    map[int]cachedType
}

type cachedType struct {
	ct *ent.ConnectionType
	at time.Time
}

// get returns type id as cached under the catalog's version at now, or nil.
func (c *typeCache) get(id int, version uint64, now time.Time) *ent.ConnectionType {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byID[id]
	if !ok || c.version != version || now.Sub(e.at) >= TypeCacheTTL {
		return nil
	}
	return e.ct
}

func (c *typeCache) put(ct *ent.ConnectionType, version uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID == nil || c.version != version {
		c.byID, c.version = map[int]cachedType{}, version
	}
	c.byID[ct.ID] = cachedType{ct: ct, at: now}
}

// catalogVersion is the version of the catalog this process syncs, or 0
// without one.
func (s *Service) catalogVersion() uint64 {
	if s.Catalog == nil {
		return 0
	}
	return s.Catalog.Version()
}

// runtimeConnection loads credential c's connection with its type
// (connectionWithType) into c's edges.
func (s *Service) runtimeConnection(ctx context.Context, c *ent.Credential) error {
	conn, err := s.connectionWithType(ctx, c.ConnectionID)
	if err != nil {
		return fmt.Errorf("connection of credential %d: %w", c.ID, err)
	}
	c.Edges.Connection = conn
	return nil
}

// connectionWithType loads connection id in the viewer's tenant with its
// type, the type from the cache when it holds it: the runtime read, the
// save and Resolved cost no query of the catalog. The error of a
// connection not found is ent's.
func (s *Service) connectionWithType(ctx context.Context, id int) (*ent.Connection, error) {
	conn, err := s.DB.Connection.Query().Where(connection.ID(id)).Only(ctx)
	if err != nil {
		return nil, err
	}
	version, now := s.catalogVersion(), time.Now()
	ct := s.types.get(conn.TypeID, version, now)
	if ct == nil {
		if ct, err = s.DB.ConnectionType.Query().Where(connectiontype.ID(conn.TypeID)).Only(ctx); err != nil {
			return nil, fmt.Errorf("type of connection %d: %w", conn.ID, err)
		}
		s.types.put(ct, version, now)
	}
	conn.Edges.Type = ct
	return conn, nil
}
