package onprem

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
)

// Forwarder listens on a local address and forwards each accepted
// connection over a new tunnel stream.
type Forwarder struct {
	ln     net.Listener
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	last   error
}

// Forward listens on a local address (ForwardHost:0) and forwards each
// accepted connection over a new stream. The caller closes it; it also
// closes when ctx ends. ErrAgentDisconnected at once when no replica
// holds a session of the resource.
func (h *Hub) Forward(ctx context.Context, resourceID int, info StreamInfo) (*Forwarder, error) {
	if !h.Reachable(ctx, resourceID) {
		return nil, ErrAgentDisconnected
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(h.o.ForwardHost, "0"))
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithCancel(ctx)
	f := &Forwarder{ln: ln, cancel: cancel, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.accept(fctx, h, resourceID, info)
	context.AfterFunc(fctx, func() { _ = f.close() })
	return f, nil
}

func (f *Forwarder) accept(ctx context.Context, h *Hub, resourceID int, info StreamInfo) {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns[c] = struct{}{}
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.serve(ctx, h, resourceID, info, c)
		}()
	}
}

// serve forwards one local connection over a new stream, with half-close.
func (f *Forwarder) serve(ctx context.Context, h *Hub, resourceID int, info StreamInfo, c net.Conn) {
	defer func() {
		_ = c.Close()
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
	}()
	st, err := h.Dial(ctx, resourceID, info)
	if err != nil {
		f.mu.Lock()
		f.last = err
		f.mu.Unlock()
		h.log.Warn("onprem: forwarded connection refused", "resource", resourceID, "err", err)
		return
	}
	// Closing the forwarder ends the stream too, whichever way it waits.
	f.mu.Lock()
	f.conns[st] = struct{}{}
	f.mu.Unlock()
	defer func() {
		_ = st.Close()
		f.mu.Lock()
		delete(f.conns, st)
		f.mu.Unlock()
	}()
	pipe(c, st)
}

// LastError is the last error a forwarded connection met opening its
// stream (ErrAgentDisconnected, a *StreamError), or nil.
func (f *Forwarder) LastError() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// Addr is the local address to connect to.
func (f *Forwarder) Addr() netip.AddrPort {
	return f.ln.Addr().(*net.TCPAddr).AddrPort()
}

// Close stops listening and ends every forwarded connection.
func (f *Forwarder) Close() error {
	f.cancel()
	err := f.close()
	f.wg.Wait()
	return err
}

func (f *Forwarder) close() error {
	err := f.ln.Close()
	f.mu.Lock()
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// closeWriter is a conn that can half-close.
type closeWriter interface{ CloseWrite() error }

// pipe copies both ways; each side's EOF half-closes the other. It returns
// when both directions are done, or at once when one fails.
func pipe(a, b net.Conn) {
	done := make(chan error, 2)
	one := func(dst, src net.Conn) {
		_, err := io.Copy(dst, src)
		if cw, ok := dst.(closeWriter); ok && err == nil {
			err = cw.CloseWrite()
		}
		done <- err
	}
	go one(a, b)
	go one(b, a)
	if err := <-done; err != nil {
		_ = a.Close()
		_ = b.Close()
	}
	<-done
}
