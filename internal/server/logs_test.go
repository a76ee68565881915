package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/server/servertest"
)

// Every log line names its component once: the OAuth 2.0 service's lines say
// component=oauth, not component=oauth component=oauth.
func TestLogsNameTheComponentOnce(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	res, err := http.Get(env.URL + "/oauth2/callback?state=unknown-state&code=x")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	found := false
	for _, line := range strings.Split(env.Logs.String(), "\n") {
		if n := strings.Count(line, " component="); n > 1 {
			t.Errorf("the component is named %d times: %s", n, line)
		}
		if strings.Contains(line, `msg="callback with an unknown state"`) {
			found = true
			if !strings.Contains(line, " component=oauth") {
				t.Errorf("the OAuth 2.0 line has no component=oauth: %s", line)
			}
		}
	}
	if !found {
		t.Fatalf("no log line for the unknown state:\n%s", env.Logs.String())
	}
}
