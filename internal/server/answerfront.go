package server

import (
	"bytes"
	"io"
	"mime"
	"net/http"

	"github.com/plugboard/plugboard/internal/auth"
)

// mayBeCached reports whether body names a root of cachedRoots, as every
// body whose answer may be cached does; other requests pass the front
// without a key computed.
func mayBeCached(body []byte) bool {
	for name := range cachedRoots {
		if bytes.Contains(body, []byte(name)) {
			return true
		}
	}
	return false
}

// answerFront answers a repeated query of cachedRoots from the cache, as the
// bytes gqlgen wrote the first time, before gqlgen parses anything. It runs
// after authentication: every request's token is checked as on the normal
// path, and an answer is only ever served to the same viewer key (role,
// organization, customer, user) that it was computed for. A miss goes
// through gqlgen; its answer is kept when the operation may be cached
// (answerMarker) and was answered 200 without errors.
func answerFront(c *answerCache, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := auth.FromContext(r.Context())
		if v == nil || !answerRequest(r) {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body) // buffered by bufferBody
		if err != nil || !mayBeCached(body) {
			r.Body = io.NopCloser(bytes.NewReader(body))
			next.ServeHTTP(w, r)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		key := answerKey(v, r.Header.Get("Accept"), body)
		// The generation is taken before anything is read: a write
		// committed after this point makes the answer computed below
		// stale at once.
		gen := c.gens.Current(v.OrganizationID)
		if e, ok := c.get(r.Context(), key, gen); ok {
			writeCached(w, e)
			return
		}
		f, lead := c.join(key, gen)
		if !lead {
			select {
			case <-f.done:
				if f.entry != nil {
					writeCached(w, f.entry)
					return
				}
			case <-r.Context().Done():
			}
			next.ServeHTTP(w, r)
			return
		}
		var e *answerEntry
		defer func() { c.land(r.Context(), key, f, e) }() // waiters go on even if next panics
		e = computeAnswer(w, r, gen, next)
	})
}

// writeCached writes a cached answer.
func writeCached(w http.ResponseWriter, e *answerEntry) {
	w.Header().Set("Content-Type", e.contentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(e.body)
}

// computeAnswer serves r through gqlgen and returns its answer as an
// entry of generation gen, or nil when it may not be kept.
func computeAnswer(w http.ResponseWriter, r *http.Request, gen Generation, next http.Handler) *answerEntry {
	fill := &answerFill{}
	rec := &captureWriter{ResponseWriter: w, status: http.StatusOK}
	next.ServeHTTP(rec, r.WithContext(withAnswerFill(r.Context(), fill)))
	if !fill.cacheable || rec.status != http.StatusOK || rec.overflow {
		return nil
	}
	return &answerEntry{gen: gen, contentType: w.Header().Get("Content-Type"), body: rec.buf.Bytes()}
}

// answerRequest reports whether r is a GraphQL POST with a JSON body, the
// one kind of request the front answers.
func answerRequest(r *http.Request) bool {
	if r.Method != http.MethodPost || r.Header.Get("Upgrade") != "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// maxCachedAnswer bounds the size of one cached answer.
const maxCachedAnswer = 1 << 20

// captureWriter passes a response through and keeps a copy of its body
// (up to maxCachedAnswer) and its status.
type captureWriter struct {
	http.ResponseWriter
	status   int
	buf      bytes.Buffer
	overflow bool
}

func (c *captureWriter) WriteHeader(code int) {
	c.status = code
	c.ResponseWriter.WriteHeader(code)
}

func (c *captureWriter) Write(p []byte) (int, error) {
	if !c.overflow {
		if c.buf.Len()+len(p) > maxCachedAnswer {
			c.overflow = true
			c.buf = bytes.Buffer{}
		} else {
			c.buf.Write(p)
		}
	}
	return c.ResponseWriter.Write(p)
}

func (c *captureWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
