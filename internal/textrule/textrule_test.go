package textrule

import "testing"

func TestRules(t *testing.T) {
	for _, tc := range []struct {
		s        string
		id, text bool // fit as an identifier, as display text
	}{
		{"acme-1", true, true},
		{"Ünïcode name", true, true},
		{"nul\x00id", false, false},
		{"bell\x07", false, false},
		{"del\x7f", false, false},
		{"c1\u0085", false, false},
		{"two\nlines", false, true},
		{"tab\there", false, true},
		{"bad\xffutf8", false, false},
	} {
		if got := Identifier(tc.s) == ""; got != tc.id {
			t.Errorf("Identifier(%q) fit = %v, want %v", tc.s, got, tc.id)
		}
		if got := Text(tc.s) == ""; got != tc.text {
			t.Errorf("Text(%q) fit = %v, want %v", tc.s, got, tc.text)
		}
	}
}
