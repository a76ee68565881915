package connection

import "time"

// Tunnel is what the domain needs of the hub that holds the on-prem
// agents' sessions; *onprem.Hub implements it.
type Tunnel interface {
	// Status says whether an agent of the resource holds a session, its
	// version and since when.
	Status(resourceID int) (connected bool, agentVersion string, since time.Time)
	// Cut closes the resource's agent session and every live stream on it.
	Cut(resourceID int)
}

// cutTunnel cuts a resource's tunnel, when there is a hub.
func (s *Service) cutTunnel(resourceID int) {
	if s.Tunnel != nil {
		s.Tunnel.Cut(resourceID)
	}
}
