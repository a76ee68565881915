package connection_test

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// BenchmarkSweep10k seeds 10,000 credentials entering their refresh margin
// against a local provider and times one Sweep over all of them, on SQLite
// and (with PLUGBOARD_TEST_POSTGRES_URL) on PostgreSQL. Each sweep must
// make exactly 10,000 token endpoint calls. Run it with
//
//	go test ./internal/oauth -run '^$' -bench Sweep10k -benchtime 1x
//
// Metrics: ns/op is the wall time of one sweep; refreshes/s; calls/op (the
// token endpoint calls of one sweep); peak-heap-MB (the process's highest
// HeapInuse during the sweep, test servers included) and
// peak-heap-growth-MB (above the heap before the sweep); alloc-MB/op.
func BenchmarkSweep10k(b *testing.B) {
	const n = 10_000
	b.Run("sqlite", func(b *testing.B) { benchSweep(b, storetest.SQLite(b), n) })
	b.Run("postgres", func(b *testing.B) { benchSweep(b, storetest.Postgres(b), n) })
}

// BenchmarkSweep100k is BenchmarkSweep10k at ten times the scale:
// 100,000 credentials entering the margin, exactly 100,000 token calls.
//
//	go test ./internal/connection -run '^$' -bench Sweep100k -benchtime 1x -timeout 60m
func BenchmarkSweep100k(b *testing.B) {
	const n = 100_000
	b.Run("sqlite", func(b *testing.B) { benchSweep(b, storetest.SQLite(b), n) })
	b.Run("postgres", func(b *testing.B) { benchSweep(b, storetest.Postgres(b), n) })
}

func benchSweep(b *testing.B, st *store.Store, n int) {
	e := newEnv(b, st, envOptions{quiet: true})
	p := newProvider(b)
	ct := e.slackLike(b, connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE, p.URL(), nil)
	seedStart := time.Now()
	ids := e.seedDue(b, p, ct, n)
	connID := e.get(b, ids[0]).ConnectionID
	b.Logf("seeded %d credentials in %s", n, time.Since(seedStart).Round(time.Millisecond))

	var calls, peak, growth, alloc float64
	var wall time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if i > 0 {
			e.makeDue(b, connID)
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base, allocBefore := ms.HeapInuse, ms.TotalAlloc
		before := p.refreshCalls.Load()
		stop := sampleHeap()
		start := time.Now()
		b.StartTimer()

		stats, err := e.svc.Sweep(e.sys)

		b.StopTimer()
		wall += time.Since(start)
		high := stop()
		runtime.ReadMemStats(&ms)
		if err != nil {
			b.Fatal(err)
		}
		got := p.refreshCalls.Load() - before
		if got != int64(n) || stats.Refreshed != n {
			b.Fatalf("a sweep over %d due credentials made %d token endpoint calls (%+v)", n, got, stats)
		}
		calls += float64(got)
		peak = max(peak, float64(high)/(1<<20))
		growth = max(growth, float64(high-min(high, base))/(1<<20))
		alloc += float64(ms.TotalAlloc-allocBefore) / (1 << 20)
	}
	b.ReportMetric(float64(n*b.N)/wall.Seconds(), "refreshes/s")
	b.ReportMetric(calls/float64(b.N), "calls/op")
	b.ReportMetric(peak, "peak-heap-MB")
	b.ReportMetric(growth, "peak-heap-growth-MB")
	b.ReportMetric(alloc/float64(b.N), "alloc-MB/op")
}

// sampleHeap samples HeapInuse until the returned function is called; that
// function returns the highest value seen.
func sampleHeap() func() uint64 {
	var mu sync.Mutex
	var high uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	read := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mu.Lock()
		high = max(high, ms.HeapInuse)
		mu.Unlock()
	}
	wg.Go(func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				read()
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		read()
		mu.Lock()
		defer mu.Unlock()
		return high
	}
}
