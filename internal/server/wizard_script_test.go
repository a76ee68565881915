package server

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// The page's script learns from the scope table which field of a save
// names a slot's holder; the placeholder never reaches a browser.
func TestWizardScriptNamesHoldersFromTheScopeTable(t *testing.T) {
	rec := httptest.NewRecorder()
	wizardPage().ServeHTTP(rec, httptest.NewRequest("GET", "/wizard?instance=1", nil))
	body := rec.Body.String()
	want := `var SAVE_HOLDER = {"CUSTOMER":"customerID","INTEGRATION":"instanceID"};`
	if !strings.Contains(body, want) {
		t.Errorf("the page's script lacks %s", want)
	}
	if strings.Contains(body, "SAVE_HOLDER_FIELDS") {
		t.Error("the page's script still carries its placeholder")
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, cspHash(wizardJS)) {
		t.Errorf("the CSP %q does not allow the served script", csp)
	}
}
