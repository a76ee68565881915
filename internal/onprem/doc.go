// Package onprem is plugboard's tunnel to services inside a customer's
// private network: an agent (`plugboard agent`) runs next to the private
// service, dials out to plugboard's public port and holds one session over
// which plugboard opens a stream per connection it needs.
//
// # The wire
//
// The agent sends `GET /agent/v1/connect` with `Authorization: Bearer
// <token>` and a `Plugboard-Agent-Version` header, and upgrades to a
// websocket (binary messages), which passes the HTTP proxies and load
// balancers a customer's network already allows. A bad token is answered
// 401 with the runtime read's JSON error shape before any upgrade. The
// server's first message names the resource and its target (hello); the
// agent answers ok, or closes the websocket when the target differs from its
// --target pin. Then github.com/hashicorp/yamux multiplexes streams over
// the websocket: the hub is the yamux client that opens streams, the agent
// accepts them.
//
// Each stream begins with a header naming the destination. The agent
// refuses any destination other than its resource's target (and its pin),
// dials the target, answers ok or a coded error (connection refused,
// timeout), then copies bytes both ways with half-close.
//
// # Sessions
//
// One live session per resource: a second agent with the same token
// replaces the first (the newest wins, so a restarted agent works at once
// even when the old session has not yet been noticed as dead). The replaced
// agent is told so and backs off to its longest delay before trying again,
// so two copies of one agent take turns rather than fight; run one.
// The hub pings every session each heartbeat (Observe: Seen); a missed ping
// closes it (Observe: Disconnected). Cut closes a session and every live
// stream at once (a deleted resource, a rotated token).
//
// # Security
//
//   - The agent only dials its resource's target: the destination of every
//     stream is checked on the agent, whatever the server asks.
//   - A token opens only its own resource: the hub asks Authenticate, and a
//     session is keyed by the resource Authenticate returned.
//   - The agent verifies the server's TLS certificate (system roots or
//     --ca-file); http:// needs --insecure.
//   - The token is sent only in the Authorization header and never logged.
//   - Every stream ends in one AuditStream call with bytes both ways and
//     duration.
//
// # Several replicas
//
// Every replica runs a Hub and accepts agents; a session lives on the
// replica whose /agent/v1/connect the load balancer chose, and only that
// replica can open its streams. Not built yet, and needed before on-prem
// resources run on several replicas:
//
//   - the holder records itself when an agent connects (resource → the
//     replica's internal address, with the session's start) in PostgreSQL,
//     and removes the row on disconnect (rows of a dead replica expire with
//     its heartbeat);
//   - Dial and Forward on a replica without the session look the holder up
//     and open the stream through it: a relay endpoint on the holder's
//     internal port, authenticated between replicas, that runs Dial locally
//     and pipes the bytes (so the agent still checks every destination);
//   - Status and Cut reach the holder the same way (Cut can also be a
//     LISTEN/NOTIFY message every replica acts on).
//
// Until then, run one replica for on-prem resources, or route
// /agent/v1/connect and the calls that use a resource to the same replica.
package onprem
