package connection_test

import (
	"fmt"
	"testing"

	"github.com/plugboard/plugboard/internal/store/storetest"
)

// errorsTB records Errorf calls instead of failing.
type errorsTB struct {
	testing.TB
	errs []string
}

func (r *errorsTB) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *errorsTB) Logf(string, ...any) {}

// TestSecretScanCatchesLeaks proves the scan every test ends with would see
// a leaked canary or a known secret in a log line, an error or a page.
func TestSecretScanCatchesLeaks(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), envOptions{})
	e.addSecret("verifier-abcdef-123")
	for _, leak := range []func(){
		func() { _, _ = e.logs.Write([]byte("level=INFO msg=x token=at_" + canary + "_1\n")) },
		func() { e.note("error: refresh token rt_" + canary + "_2 refused") },
		func() { e.note("<p>verifier-abcdef-123</p>") },
	} {
		leak()
		rec := &errorsTB{TB: t}
		e.checkNoSecrets(rec)
		if len(rec.errs) == 0 {
			t.Error("the secret scan missed a leak")
		}
		e.logs.Reset()
		e.mu.Lock()
		e.texts = nil
		e.mu.Unlock()
	}
}
