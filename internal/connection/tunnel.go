package connection

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/internal/onprem"
	"github.com/plugboard/plugboard/plugins/sdk"
)

// Tunnel is what the domain needs of the hub that holds the on-prem
// agents' sessions; *onprem.Hub implements it.
type Tunnel interface {
	// Dial opens one stream to the resource's target.
	Dial(ctx context.Context, resourceID int, info onprem.StreamInfo) (net.Conn, error)
	// Forward listens on a local address and forwards each connection
	// accepted there over a new stream to the resource's target.
	Forward(ctx context.Context, resourceID int, info onprem.StreamInfo) (*onprem.Forwarder, error)
	// Status says whether an agent of the resource holds a session, its
	// version and since when.
	Status(resourceID int) (connected bool, agentVersion string, since time.Time)
	// Cut closes the resource's agent session and every live stream on it.
	Cut(resourceID int)
}

// ErrAgentDisconnected is the answer for a bound credential whose
// resource's agent holds no session: nothing can reach the target. It
// wraps onprem.ErrAgentDisconnected.
var ErrAgentDisconnected = fmt.Errorf("the customer's on-prem agent is not connected, so plugboard cannot reach the credential's host; start the agent (plugboard agent) next to the service and try again: %w", onprem.ErrAgentDisconnected)

// cutTunnel cuts a resource's tunnel, when there is a hub.
func (s *Service) cutTunnel(resourceID int) {
	if s.Tunnel != nil {
		s.Tunnel.Cut(resourceID)
	}
}

// forwardValues returns resolved with ct's onPremControlled inputs (host,
// port) replaced by the local address of a forwarder over resourceID's
// tunnel, and the function that closes the forwarder. A resource without a
// connected agent is ErrAgentDisconnected.
func (s *Service) forwardValues(ctx context.Context, ct *ent.ConnectionType, resourceID int, resolved map[string]string, info onprem.StreamInfo) (map[string]string, func(), error) {
	if s.Tunnel == nil {
		return nil, nil, ErrAgentDisconnected
	}
	fw, err := s.Tunnel.Forward(ctx, resourceID, info)
	if errors.Is(err, onprem.ErrAgentDisconnected) {
		return nil, nil, ErrAgentDisconnected
	}
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]string, len(resolved))
	for k, v := range resolved {
		out[k] = v
	}
	addr := fw.Addr()
	for _, in := range ct.Inputs {
		if !in.OnPremControlled {
			continue
		}
		if in.Type == schematype.InputType(sdk.InputNumber) {
			out[in.Key] = strconv.Itoa(int(addr.Port()))
		} else {
			out[in.Key] = addr.Addr().String()
		}
	}
	return out, func() { _ = fw.Close() }, nil
}

// onPremKeys are the keys of ct's onPremControlled inputs.
func onPremKeys(inputs []schematype.Input) map[string]bool {
	out := map[string]bool{}
	for _, in := range inputs {
		if in.OnPremControlled {
			out[in.Key] = true
		}
	}
	return out
}
