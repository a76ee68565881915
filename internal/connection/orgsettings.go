package connection

import (
	"context"
	"sync"
	"time"

	"github.com/plugboard/plugboard/ent/organization"
)

// orgSettingsTTL bounds how long a replica serves an organization's proxy
// setting after another replica changed it; this process's own changes
// take effect at once (forget after the commit).
const orgSettingsTTL = 5 * time.Second

// orgSettings caches what every proxied call reads of its organization
// (allow_private_networks), so a call costs no query for it.
type orgSettings struct {
	mu sync.Mutex
	m  map[int]orgSetting
}

type orgSetting struct {
	allowPrivate bool
	at           time.Time
}

func (c *orgSettings) get(orgID int, now time.Time) (orgSetting, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[orgID]
	return e, ok && now.Sub(e.at) < orgSettingsTTL
}

func (c *orgSettings) put(orgID int, e orgSetting) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[int]orgSetting{}
	}
	c.m[orgID] = e
}

func (c *orgSettings) forget(orgID int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, orgID)
}

// orgAllowsPrivate reports whether organization orgID lets the credential
// proxy reach private addresses.
func (s *Service) orgAllowsPrivate(ctx context.Context, orgID int) (bool, error) {
	now := time.Now()
	if e, ok := s.orgs.get(orgID, now); ok {
		return e.allowPrivate, nil
	}
	allow, err := s.DB.Organization.Query().Where(organization.ID(orgID)).
		Select(organization.FieldAllowPrivateNetworks).Bool(ctx)
	if err != nil {
		return false, err
	}
	s.orgs.put(orgID, orgSetting{allowPrivate: allow, at: now})
	return allow, nil
}
