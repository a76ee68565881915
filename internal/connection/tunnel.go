package connection

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
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
	// Status says whether an agent of the resource holds a session with
	// this replica, its version and since when.
	Status(resourceID int) (connected bool, agentVersion string, since time.Time)
	// Reachable says whether a stream of the resource can be opened: this
	// replica or another holds its agent's session.
	Reachable(ctx context.Context, resourceID int) bool
	// Cut closes the resource's agent session and every live stream on it,
	// on every replica.
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
	fw, err := s.forward(ctx, resourceID, info)
	if err != nil {
		return nil, nil, err
	}
	return forwardedValues(ct, resolved, fw.Addr()), func() { _ = fw.Close() }, nil
}

// forward opens a forwarder over resourceID's tunnel; without a hub or a
// connected agent, ErrAgentDisconnected.
func (s *Service) forward(ctx context.Context, resourceID int, info onprem.StreamInfo) (*onprem.Forwarder, error) {
	if s.Tunnel == nil {
		return nil, ErrAgentDisconnected
	}
	fw, err := s.Tunnel.Forward(ctx, resourceID, info)
	return fw, tunnelErr(err)
}

// dialTunnel opens one stream over resourceID's tunnel; without a hub or a
// connected agent, ErrAgentDisconnected.
func (s *Service) dialTunnel(ctx context.Context, resourceID int, info onprem.StreamInfo) (net.Conn, error) {
	if s.Tunnel == nil {
		return nil, ErrAgentDisconnected
	}
	c, err := s.Tunnel.Dial(ctx, resourceID, info)
	return c, tunnelErr(err)
}

// tunnelErr is the hub's err with its onprem.ErrAgentDisconnected told as
// the domain's ErrAgentDisconnected, which says what to do.
func tunnelErr(err error) error {
	if errors.Is(err, onprem.ErrAgentDisconnected) {
		return ErrAgentDisconnected
	}
	return err
}

// forwardedValues is resolved with ct's onPremControlled inputs naming a
// local forwarder's address.
func forwardedValues(ct *ent.ConnectionType, resolved map[string]string, addr netip.AddrPort) map[string]string {
	return onPremValues(ct, resolved, addr.Addr().String(), strconv.Itoa(int(addr.Port())))
}

// onPremValues is resolved with ct's onPremControlled inputs set to host
// and port: a NUMBER input gets the port, the others the host.
func onPremValues(ct *ent.ConnectionType, resolved map[string]string, host, port string) map[string]string {
	out := make(map[string]string, len(resolved))
	for k, v := range resolved {
		out[k] = v
	}
	for _, in := range ct.Inputs {
		if !in.OnPremControlled {
			continue
		}
		if in.Type == schematype.InputType(sdk.InputNumber) {
			out[in.Key] = port
		} else {
			out[in.Key] = host
		}
	}
	return out
}

// runtimeForwarders are the long-lived forwarders of the runtime reads,
// one per bound credential and resource: the address a runtime read names
// stays the same across reads and agent restarts, and every stream is
// audited with its credential.
type runtimeForwarders struct {
	mu sync.Mutex
	m  map[[2]int]*onprem.Forwarder
}

// runtimeValues is the runtime read's values of c: for a bound credential
// its onPremControlled inputs name the local address of its runtime
// forwarder. A resource without a connected agent is ErrAgentDisconnected.
func (s *Service) runtimeValues(ctx context.Context, c *ent.Credential, ct *ent.ConnectionType, values map[string]string) (map[string]string, error) {
	id := boundTo(c)
	if id == 0 {
		return values, nil
	}
	if s.Tunnel == nil || !s.Tunnel.Reachable(ctx, id) {
		return nil, ErrAgentDisconnected
	}
	rf := &s.runtimeFwd
	rf.mu.Lock()
	defer rf.mu.Unlock()
	key := [2]int{c.ID, id}
	f := rf.m[key]
	if f == nil {
		rf.closeLocked([]int{c.ID}, id) // a forwarder of an earlier binding
		info := onprem.StreamInfo{Purpose: "runtime", Actor: actorOf(ctx), ConnectionID: c.ConnectionID, CredentialID: c.ID}
		var err error
		// The forwarder outlives the read: it ends with the hub.
		if f, err = s.forward(context.WithoutCancel(ctx), id, info); err != nil {
			return nil, err
		}
		if rf.m == nil {
			rf.m = map[[2]int]*onprem.Forwarder{}
		}
		rf.m[key] = f
	}
	return forwardedValues(ct, values, f.Addr()), nil
}

// closeLocked closes and forgets the forwarders of the credentials ids,
// except the one to resource keep. rf.mu is held.
func (rf *runtimeForwarders) closeLocked(ids []int, keep int) {
	for key, f := range rf.m {
		if key[1] != keep && slices.Contains(ids, key[0]) {
			_ = f.Close()
			delete(rf.m, key)
		}
	}
}

// closeRuntimeForwarders closes the runtime forwarders of the credentials
// ids (deleted): their address stops answering and their live connections
// end.
func (s *Service) closeRuntimeForwarders(ids []int) {
	rf := &s.runtimeFwd
	rf.mu.Lock()
	defer rf.mu.Unlock()
	rf.closeLocked(ids, 0)
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
