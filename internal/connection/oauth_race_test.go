package connection_test

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/internal/connection"
	"github.com/plugboard/plugboard/internal/oauth"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// holdRefresh makes p's next refresh wait until release is closed, after
// telling entered.
func holdRefresh(p *provider) (entered chan struct{}, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	p.onToken = func(_ http.ResponseWriter, _ *http.Request, form url.Values) bool {
		if form.Get("grant_type") == "refresh_token" {
			close(entered)
			<-release
		}
		return false
	}
	return entered, release
}

// TestRefreshRaces checks that a refresh never overwrites what was stored
// while it talked to the provider.
func TestRefreshRaces(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, envOptions{})

		t.Run("a disconnect during a refresh wins", func(t *testing.T) {
			p := newProvider(t)
			cred, _ := e.authorizedCredential(t, p)
			entered, release := holdRefresh(p)
			e.expire(t, cred.ID)
			done := make(chan error)
			go func() {
				_, err := e.svc.Token(e.runtimeCtx(t), cred.ID, 0)
				done <- err
			}()
			<-entered
			if err := e.svc.Disconnect(e.admin, cred.ID); err != nil {
				close(release)
				t.Fatal(e.noteErr(err))
			}
			close(release)
			if err := <-done; !errors.Is(e.noteErr(err), oauth.ErrNotConnected) {
				t.Errorf("Token racing a disconnect: %v", err)
			}
			if c := e.get(t, cred.ID); c.Status != credential.StatusPENDING || c.Token != nil {
				t.Errorf("the refresh overwrote the disconnect: %s", c.Status)
			}
		})

		t.Run("a save during a refresh keeps both", func(t *testing.T) {
			p := newProvider(t)
			cred, _ := e.authorizedCredential(t, p)
			entered, release := holdRefresh(p)
			e.expire(t, cred.ID)
			done := make(chan error)
			go func() {
				_, err := e.svc.Token(e.runtimeCtx(t), cred.ID, 0)
				done <- err
			}()
			<-entered
			scopes := "chat:write,users:read"
			_, _, err := e.conns.SaveCredential(e.admin, connection.SaveCredentialInput{
				ConnectionID: cred.ConnectionID,
				Values:       []connection.ValueInput{{Key: "scopes", Value: &scopes}},
			})
			close(release)
			if err != nil {
				t.Fatal(e.noteErr(err))
			}
			if err := <-done; err != nil {
				t.Fatal(e.noteErr(err))
			}
			c := e.get(t, cred.ID)
			if c.Inputs["scopes"] != scopes || c.Status != credential.StatusACTIVE || !c.TokenExpiresAt.After(e.clock.Now()) {
				t.Errorf("after a save racing a refresh: scopes %q, %s, expiry %v", c.Inputs["scopes"], c.Status, c.TokenExpiresAt)
			}
		})
	})
}
