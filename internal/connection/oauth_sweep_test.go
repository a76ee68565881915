package connection_test

import (
	"testing"
	"time"

	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

func TestSweep(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, envOptions{})
		p := newProvider(t)
		ct := e.slackLike(t, connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE, p.URL(), nil)
		ids := e.seedDue(t, p, ct, 310)
		// Five are FAILED, five not due yet.
		if err := e.db.Credential.Update().Where(credential.IDIn(ids[:5]...)).
			SetStatus(credential.StatusFAILED).Exec(e.sys); err != nil {
			t.Fatal(err)
		}
		if err := e.db.Credential.Update().Where(credential.IDIn(ids[5:10]...)).
			SetNextRefreshAt(e.clock.Now().Add(time.Hour)).Exec(e.sys); err != nil {
			t.Fatal(err)
		}

		stats, err := e.svc.Sweep(e.sys)
		if err != nil {
			t.Fatal(err)
		}
		if n := p.refreshCalls.Load(); n != 300 || stats.Due != 300 || stats.Refreshed != 300 {
			t.Fatalf("one sweep over 300 due credentials: %d refresh calls, %+v", n, stats)
		}
		due, err := e.db.Credential.Query().Where(credential.NextRefreshAtLTE(e.clock.Now())).Count(e.sys)
		if err != nil || due != 5 { // the FAILED ones keep their old schedule
			t.Errorf("%d credentials still due after the sweep (%v)", due, err)
		}
		for _, id := range ids[:5] {
			if c := e.get(t, id); c.Status != credential.StatusFAILED {
				t.Errorf("a FAILED credential became %s", c.Status)
			}
		}
		// Nothing more to do.
		stats, err = e.svc.Sweep(e.sys)
		if err != nil || stats.Due != 0 || p.refreshCalls.Load() != 300 {
			t.Errorf("second sweep: %+v %v, calls %d", stats, err, p.refreshCalls.Load())
		}
		// An hour later every ACTIVE one is due again.
		e.clock.Advance(61 * time.Minute)
		stats, err = e.svc.Sweep(e.sys)
		if err != nil || stats.Refreshed != 305 || p.refreshCalls.Load() != 605 {
			t.Errorf("sweep an hour later: %+v %v, calls %d", stats, err, p.refreshCalls.Load())
		}
	})
}
