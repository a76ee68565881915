package server

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// The Go runtime and process metrics, in the names of the Prometheus Go
// client's Go and process collectors, so that the usual dashboards and
// alerts (goroutine or fd leaks, memory growth) work unchanged.

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux platform.
const userHZ = 100

// metric writes one sample with its HELP and TYPE lines.
func metric(b *strings.Builder, name, typ, help string, value float64) {
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n%s %g\n", name, help, name, typ, name, value)
}

// writeGoMetrics writes the go_* metrics.
func writeGoMetrics(b *strings.Builder) {
	metric(b, "go_goroutines", "gauge", "Number of goroutines that currently exist.", float64(runtime.NumGoroutine()))
	metric(b, "go_threads", "gauge", "Number of OS threads created.", float64(pprof.Lookup("threadcreate").Count()))
	fmt.Fprintf(b, "# HELP go_info Information about the Go environment.\n# TYPE go_info gauge\ngo_info{version=%q} 1\n", runtime.Version())

	var gc debug.GCStats
	gc.PauseQuantiles = make([]time.Duration, 5)
	debug.ReadGCStats(&gc)
	b.WriteString("# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.\n")
	b.WriteString("# TYPE go_gc_duration_seconds summary\n")
	for i, q := range []string{"0", "0.25", "0.5", "0.75", "1"} {
		fmt.Fprintf(b, "go_gc_duration_seconds{quantile=%q} %g\n", q, gc.PauseQuantiles[i].Seconds())
	}
	fmt.Fprintf(b, "go_gc_duration_seconds_sum %g\ngo_gc_duration_seconds_count %d\n", gc.PauseTotal.Seconds(), gc.NumGC)

	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	for _, s := range []struct {
		name, typ, help string
		v               uint64
	}{
		{"go_memstats_alloc_bytes", "gauge", "Number of bytes allocated in heap and currently in use.", m.Alloc},
		{"go_memstats_alloc_bytes_total", "counter", "Total number of bytes allocated in heap until now.", m.TotalAlloc},
		{"go_memstats_sys_bytes", "gauge", "Number of bytes obtained from system.", m.Sys},
		{"go_memstats_mallocs_total", "counter", "Total number of heap objects allocated.", m.Mallocs},
		{"go_memstats_frees_total", "counter", "Total number of heap objects frees.", m.Frees},
		{"go_memstats_heap_alloc_bytes", "gauge", "Number of heap bytes allocated and currently in use.", m.HeapAlloc},
		{"go_memstats_heap_sys_bytes", "gauge", "Number of heap bytes obtained from system.", m.HeapSys},
		{"go_memstats_heap_idle_bytes", "gauge", "Number of heap bytes waiting to be used.", m.HeapIdle},
		{"go_memstats_heap_inuse_bytes", "gauge", "Number of heap bytes that are in use.", m.HeapInuse},
		{"go_memstats_heap_released_bytes", "gauge", "Number of heap bytes released to OS.", m.HeapReleased},
		{"go_memstats_heap_objects", "gauge", "Number of currently allocated objects.", m.HeapObjects},
		{"go_memstats_stack_inuse_bytes", "gauge", "Number of bytes obtained from system for stack allocator in non-CGO environments.", m.StackInuse},
		{"go_memstats_gc_sys_bytes", "gauge", "Number of bytes used for garbage collection system metadata.", m.GCSys},
		{"go_memstats_next_gc_bytes", "gauge", "Number of heap bytes when next garbage collection will take place.", m.NextGC},
	} {
		metric(b, s.name, s.typ, s.help, float64(s.v))
	}
	metric(b, "go_memstats_last_gc_time_seconds", "gauge", "Number of seconds since 1970 of last garbage collection.", float64(m.LastGC)/1e9)
}

// writeProcessMetrics writes the process_* metrics from /proc; where /proc
// is missing (not Linux) it writes none.
func writeProcessMetrics(b *strings.Builder) {
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		metric(b, "process_open_fds", "gauge", "Number of open file descriptors.", float64(len(fds)))
	}
	if limit, ok := maxFDs(); ok {
		metric(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.", limit)
	}
	st, ok := procStat()
	if !ok {
		return
	}
	metric(b, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", st.cpuSeconds)
	metric(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", st.virtualBytes)
	metric(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", st.residentBytes)
	if boot, ok := bootTime(); ok {
		metric(b, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", boot+st.startTicks/userHZ)
	}
}

type procStats struct {
	cpuSeconds, virtualBytes, residentBytes, startTicks float64
}

// procStat reads /proc/self/stat (see proc(5)).
func procStat() (procStats, bool) {
	raw, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return procStats{}, false
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(raw), ')')
	if i < 0 {
		return procStats{}, false
	}
	f := strings.Fields(string(raw[i+1:])) // f[0] is field 3, the state
	if len(f) < 22 {
		return procStats{}, false
	}
	num := func(field int) float64 { v, _ := strconv.ParseFloat(f[field-3], 64); return v }
	return procStats{
		cpuSeconds:    (num(14) + num(15)) / userHZ,
		startTicks:    num(22),
		virtualBytes:  num(23),
		residentBytes: num(24) * float64(os.Getpagesize()),
	}, true
}

// bootTime is the btime line of /proc/stat: the boot time in seconds since
// the epoch.
func bootTime() (float64, bool) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			t, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return t, err == nil
		}
	}
	return 0, false
}

// maxFDs is the soft limit of open files from /proc/self/limits.
func maxFDs() (float64, bool) {
	raw, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0, false
			}
			v, err := strconv.ParseFloat(f[0], 64)
			return v, err == nil
		}
	}
	return 0, false
}
