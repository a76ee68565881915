package onprem

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

// Dial opens a stream to the resource's target: over this hub's session
// of the resource, or relayed through the replica that holds it. Over a
// session of its own the returned conn's CloseWrite half-closes; Close
// ends the stream, and the hub holding the session reports it to
// AuditStream. ErrAgentDisconnected at once when no replica holds a
// session; a *StreamError when the agent refused the stream.
func (h *Hub) Dial(ctx context.Context, resourceID int, info StreamInfo) (net.Conn, error) {
	s := h.session(resourceID)
	if s == nil {
		return h.relayDial(ctx, resourceID, info)
	}
	return h.dialDest(ctx, s, s.agent.Target, info)
}

// dialDest opens a stream asking the agent for dest.
func (h *Hub) dialDest(ctx context.Context, s *session, dest string, info StreamInfo) (net.Conn, error) {
	ys, err := s.mux.OpenStream()
	if err != nil {
		return nil, ErrAgentDisconnected
	}
	st := &stream{Stream: ys, hub: h, sess: s, info: info, start: time.Now(), ctx: context.WithoutCancel(ctx)}
	s.mu.Lock()
	s.streams[st] = struct{}{}
	s.mu.Unlock()
	deadline := time.Now().Add(h.o.DialTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = ys.SetDeadline(deadline)
	var a streamAnswer
	if err = writeFrame(ys, streamHeader{Dest: dest}); err == nil {
		err = readFrame(ys, &a)
	}
	_ = ys.SetDeadline(time.Time{})
	switch {
	case err != nil && s.mux.IsClosed():
		err = ErrAgentDisconnected
	case err != nil:
		err = &StreamError{Code: StreamTimeout, Message: "the agent did not answer: " + err.Error()}
	case !a.OK:
		err = &StreamError{Code: a.Code, Message: a.Message}
	}
	if err != nil {
		st.abort(err)
		return nil, err
	}
	return st, nil
}

// stream is one tunnel stream on the hub's side: it counts bytes and
// reports itself to AuditStream once.
type stream struct {
	*yamux.Stream
	hub       *Hub
	sess      *session
	info      StreamInfo
	start     time.Time
	ctx       context.Context
	up, down  atomic.Int64
	errMu     sync.Mutex
	err       error
	closeOnce sync.Once
}

func (st *stream) Read(b []byte) (int, error) {
	n, err := st.Stream.Read(b)
	st.down.Add(int64(n))
	if err != nil && !errors.Is(err, io.EOF) {
		st.setErr(err)
	}
	return n, err
}

func (st *stream) Write(b []byte) (int, error) {
	n, err := st.Stream.Write(b)
	st.up.Add(int64(n))
	if err != nil {
		st.setErr(err)
	}
	return n, err
}

func (st *stream) setErr(err error) {
	st.errMu.Lock()
	defer st.errMu.Unlock()
	if st.err == nil {
		st.err = err
	}
}

// CloseWrite half-closes: the target reads EOF, its answer still comes back.
func (st *stream) CloseWrite() error { return st.Stream.Close() }

// Close ends the stream and audits it.
func (st *stream) Close() error {
	st.finish(nil)
	return nil
}

// abort ends the stream with err (a refusal, a cut).
func (st *stream) abort(err error) { st.finish(err) }

func (st *stream) finish(err error) {
	st.closeOnce.Do(func() {
		if err != nil {
			st.setErr(err)
		}
		_ = st.Stream.Close()
		// Unblock readers now; the agent sees the FIN and closes its side.
		_ = st.Stream.SetReadDeadline(time.Now())
		st.sess.mu.Lock()
		delete(st.sess.streams, st)
		st.sess.mu.Unlock()
		if st.hub.o.AuditStream == nil {
			return
		}
		st.errMu.Lock()
		rerr := st.err
		st.errMu.Unlock()
		st.hub.o.AuditStream(st.ctx, StreamRecord{
			ResourceID: st.sess.agent.ResourceID, Info: st.info,
			BytesUp: st.up.Load(), BytesDown: st.down.Load(),
			Duration: time.Since(st.start), Err: rerr,
		})
	})
}
