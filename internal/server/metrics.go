package server

import (
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/plugboard/plugboard/internal/pluginhost"
)

// Metrics holds plugboard's Prometheus metrics in a registry of its own (not
// the process-wide default, so two servers in one process never share
// series): HTTP request counts and times, latency histograms of GraphQL
// operations, plugin calls, token refreshes and runtime reads, gauges that
// other parts register, and the Go runtime and process collectors.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	seconds  *prometheus.CounterVec

	operations   *prometheus.HistogramVec
	pluginCalls  *prometheus.HistogramVec
	refreshes    *prometheus.HistogramVec
	runtimeReads *prometheus.HistogramVec
	proxyCalls   *prometheus.HistogramVec
	opNames      *boundedNames
	handler      http.Handler
}

// Sample is one labelled value of a gauge.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// latencyBuckets span a cached read (1 ms) to a plugin's live test or a slow
// token endpoint (30 s, the longest deadline of a call).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// maxOperationNames bounds the operation label of the GraphQL histogram;
// names beyond it are counted as "other".
const maxOperationNames = 100

// NewMetrics returns metrics with no samples yet, the Go and process
// collectors registered.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plugboard_http_requests_total", Help: "HTTP requests by path and status code.",
		}, []string{"path", "code"}),
		seconds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plugboard_http_request_seconds_total", Help: "Time spent serving HTTP requests by path.",
		}, []string{"path"}),
		operations: histogram("plugboard_graphql_operation_duration_seconds",
			"Time to execute a GraphQL operation (a subscription: its set-up), by operation name and type.", "operation", "type"),
		pluginCalls: histogram("plugboard_plugin_call_duration_seconds",
			"Time of a call to a plugin, by plugin, method and result.", "plugin", "method", "result"),
		refreshes: histogram("plugboard_token_refresh_duration_seconds",
			"Time of an OAuth 2.0 token refresh at the provider, by result.", "result"),
		runtimeReads: histogram("plugboard_runtime_read_duration_seconds",
			"Time to serve a runtime read of a credential, by status code.", "code"),
		proxyCalls: histogram("plugboard_proxy_call_duration_seconds",
			"Time of a call through the credential proxy, answer body included, by connection type and the status code sent.", "type", "code"),
		opNames: &boundedNames{max: maxOperationNames, seen: map[string]bool{}},
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.seconds, m.operations, m.pluginCalls, m.refreshes, m.runtimeReads, m.proxyCalls,
	)
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return m
}

func histogram(name, help string, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: latencyBuckets}, labels)
}

// Gauge registers a gauge read at each scrape. Every sample of one gauge
// must carry the same label names.
func (m *Metrics) Gauge(name, help string, read func() []Sample) {
	m.reg.MustRegister(gaugeFunc{name: name, help: help, read: read})
}

// ServeHTTP writes the metrics in the Prometheus text format.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.handler.ServeHTTP(w, r)
}

// ObservePluginCall records one plugin call; it is pluginhost.Config's
// ObserveCall.
func (m *Metrics) ObservePluginCall(plugin, method string, d time.Duration, err error) {
	m.pluginCalls.WithLabelValues(plugin, method, pluginResult(err)).Observe(d.Seconds())
}

// ObserveTokenRefresh records one refresh at a provider's token endpoint;
// it is oauth.Config's ObserveRefresh.
func (m *Metrics) ObserveTokenRefresh(d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.refreshes.WithLabelValues(result).Observe(d.Seconds())
}

// pluginResult is the result label of a plugin call: a few fixed words,
// never the error's text.
func pluginResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, pluginhost.ErrTimeout):
		return "timeout"
	case errors.Is(err, pluginhost.ErrUnavailable):
		return "unavailable"
	default:
		return "error"
	}
}

var knownPaths = map[string]bool{
	"/graphql": true, "/healthz": true, "/readyz": true, "/metrics": true,
	"/oauth2/callback": true, "/wizard": true, "/runtime/v1/credentials": true,
	"/proxy/v1/credentials": true,
}

// pathLabel folds a request path into the few known ones, so that no path
// a client makes up becomes a series.
func pathLabel(path string) string {
	if strings.HasPrefix(path, "/runtime/v1/credentials/") {
		path = "/runtime/v1/credentials"
	}
	if strings.HasPrefix(path, "/proxy/v1/credentials/") {
		path = "/proxy/v1/credentials"
	}
	if !knownPaths[path] {
		return "other"
	}
	return path
}

func (m *Metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		path := pathLabel(r.URL.Path)
		m.requests.WithLabelValues(path, strconv.Itoa(rec.status)).Inc()
		m.seconds.WithLabelValues(path).Add(time.Since(start).Seconds())
	})
}

// timeRuntimeReads records the latency of each runtime read by its status
// code.
func (m *Metrics) timeRuntimeReads(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		m.runtimeReads.WithLabelValues(strconv.Itoa(rec.status)).Observe(time.Since(start).Seconds())
	})
}

// gaugeFunc is a gauge whose samples are read at each scrape. It declares
// no descriptors (an unchecked collector), since its label values are only
// known when read.
type gaugeFunc struct {
	name, help string
	read       func() []Sample
}

func (g gaugeFunc) Describe(chan<- *prometheus.Desc) {}

func (g gaugeFunc) Collect(ch chan<- prometheus.Metric) {
	for _, s := range g.read() {
		names := make([]string, 0, len(s.Labels))
		for k := range s.Labels {
			names = append(names, k)
		}
		sort.Strings(names)
		values := make([]string, len(names))
		for i, k := range names {
			values[i] = s.Labels[k]
		}
		desc := prometheus.NewDesc(g.name, g.help, names, nil)
		metric, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, s.Value, values...)
		if err != nil {
			metric = prometheus.NewInvalidMetric(desc, err)
		}
		ch <- metric
	}
}
