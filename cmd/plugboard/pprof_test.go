package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// With --pprof-addr the server serves Go's profiles on that address, and
// the API's address serves none of them.
func TestServePprofAddr(t *testing.T) {
	bin, pluginDir := buildServe(t)
	s, line := serve(t, bin, "serve", "--data-dir", t.TempDir(), "--plugin-dir", pluginDir,
		"--addr", "127.0.0.1:0", "--pprof-addr", "127.0.0.1:0")
	m := regexp.MustCompile(`msg="pprof profiles served" addr=(\S+)`).FindStringSubmatch(s.log())
	if m == nil {
		t.Fatalf("no pprof address in the log:\n%s", s.log())
	}
	res, err := http.Get("http://" + m[1] + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile:") {
		t.Errorf("pprof goroutine profile: %d %.200s", res.StatusCode, body)
	}
	api := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(line)[1]
	waitReady(t, "http://"+api+"/readyz")
	res, err = http.Get("http://" + api + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode == http.StatusOK {
		t.Errorf("the API address serves pprof profiles")
	}
}
