package server

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Metrics counts HTTP requests and exposes them, with gauges registered by
// other parts and the Go runtime and process metrics, in the Prometheus text
// format.
type Metrics struct {
	mu       sync.Mutex
	requests map[string]*atomic.Int64 // "path|code"
	seconds  map[string]*atomic.Int64 // path → total microseconds
	gauges   map[string]func() []Sample
}

// Sample is one labelled value of a gauge.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// NewMetrics returns empty metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		requests: map[string]*atomic.Int64{},
		seconds:  map[string]*atomic.Int64{},
		gauges:   map[string]func() []Sample{},
	}
}

// Gauge registers a gauge read at each scrape.
func (m *Metrics) Gauge(name string, read func() []Sample) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gauges[name] = read
}

func (m *Metrics) counter(set map[string]*atomic.Int64, key string) *atomic.Int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := set[key]
	if !ok {
		c = new(atomic.Int64)
		set[key] = c
	}
	return c
}

var knownPaths = map[string]bool{
	"/graphql": true, "/healthz": true, "/readyz": true, "/metrics": true,
	"/oauth2/callback": true, "/wizard": true, "/runtime/v1/credentials": true,
}

func (m *Metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		path := r.URL.Path
		if strings.HasPrefix(path, "/runtime/v1/credentials/") {
			path = "/runtime/v1/credentials"
		}
		if !knownPaths[path] {
			path = "other"
		}
		m.counter(m.requests, fmt.Sprintf("%s|%d", path, rec.status)).Add(1)
		m.counter(m.seconds, path).Add(time.Since(start).Microseconds())
	})
}

// ServeHTTP writes the metrics in the Prometheus text format.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	m.mu.Lock()
	reqKeys := sortedKeys(m.requests)
	secKeys := sortedKeys(m.seconds)
	gaugeNames := make([]string, 0, len(m.gauges))
	for n := range m.gauges {
		gaugeNames = append(gaugeNames, n)
	}
	gauges := m.gauges
	m.mu.Unlock()
	sort.Strings(gaugeNames)

	var b strings.Builder
	b.WriteString("# HELP plugboard_http_requests_total HTTP requests by path and status code.\n")
	b.WriteString("# TYPE plugboard_http_requests_total counter\n")
	for _, k := range reqKeys {
		path, code, _ := strings.Cut(k, "|")
		fmt.Fprintf(&b, "plugboard_http_requests_total{path=%q,code=%q} %d\n", path, code, m.counter(m.requests, k).Load())
	}
	b.WriteString("# HELP plugboard_http_request_seconds_total Time spent serving HTTP requests by path.\n")
	b.WriteString("# TYPE plugboard_http_request_seconds_total counter\n")
	for _, k := range secKeys {
		fmt.Fprintf(&b, "plugboard_http_request_seconds_total{path=%q} %g\n", k, float64(m.counter(m.seconds, k).Load())/1e6)
	}
	for _, name := range gaugeNames {
		fmt.Fprintf(&b, "# TYPE %s gauge\n", name)
		for _, s := range gauges[name]() {
			fmt.Fprintf(&b, "%s%s %g\n", name, labels(s.Labels), s.Value)
		}
	}
	writeGoMetrics(&b)
	writeProcessMetrics(&b)
	_, _ = w.Write([]byte(b.String()))
}

func sortedKeys(m map[string]*atomic.Int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func labels(l map[string]string) string {
	if len(l) == 0 {
		return ""
	}
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%q", k, l[k]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}
