//go:build unix

package pluginhost

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/plugins/sdk"
)

func fakeDescription() *sdk.Description {
	return &sdk.Description{
		Key:     "fake",
		Version: "1.0.0",
		ConnectionTypes: []sdk.ConnectionType{{
			Key:         "fake.apiKey",
			Label:       "Fake\u202e API key",
			Description: "Line one\nline\ttwo\x00\x1b[31m red\u2066 isolate\u2069 \xff\xfeend",
			IconURL:     "https://cdn.example.com/fake.svg",
			AuthKind:    sdk.AuthAPIKey,
			Inputs: []sdk.Input{
				{Key: "apiKey", Label: "API\x07 key", Type: sdk.InputPassword, Secret: true,
					Placeholder: "sk_\u202a...", Example: "sk_\x7ftest", Description: "From the \u202dsettings\u202c page.",
					Pattern: "sk_[a-z]+\n?"},
				{Key: "region", Label: "Region", Type: sdk.InputPicklist, Default: "eu",
					Options: []sdk.Option{{Value: "eu\x01", Label: "Europe\x01\u2067"}, {Value: "us", Label: "United States"}}},
			},
		}},
	}
}

func TestAcceptDescriptionSanitizes(t *testing.T) {
	d := fakeDescription()
	if err := acceptDescription(d); err != nil {
		t.Fatal(err)
	}
	ct := d.ConnectionTypes[0]
	checks := []struct{ got, want string }{
		{ct.Label, "Fake API key"},
		{ct.Description, "Line one\nline\ttwo[31m red isolate end"},
		{ct.IconURL, "https://cdn.example.com/fake.svg"},
		{ct.Inputs[0].Label, "API key"},
		{ct.Inputs[0].Placeholder, "sk_..."},
		{ct.Inputs[0].Example, "sk_test"},
		{ct.Inputs[0].Description, "From the settings page."},
		{ct.Inputs[1].Options[0].Label, "Europe"},
		// Values, keys and patterns are not display text: left alone.
		{ct.Inputs[1].Options[0].Value, "eu\x01"},
		{ct.Inputs[0].Pattern, "sk_[a-z]+\n?"},
	}
	for i, c := range checks {
		if c.got != c.want {
			t.Errorf("check %d: got %q, want %q", i, c.got, c.want)
		}
	}
}

func TestAcceptDescriptionDropsNonHTTPSIcons(t *testing.T) {
	for _, icon := range []string{"http://cdn.example.com/x.svg", "javascript:alert(1)", "data:image/svg+xml,<svg/>", "//cdn.example.com/x.svg", "https://", "relative.svg"} {
		d := fakeDescription()
		d.ConnectionTypes[0].IconURL = icon
		if err := acceptDescription(d); err != nil {
			t.Fatal(err)
		}
		if got := d.ConnectionTypes[0].IconURL; got != "" {
			t.Errorf("icon %q kept as %q", icon, got)
		}
	}
}

func TestAcceptDescriptionLimits(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name   string
		change func(d *sdk.Description)
		want   string
	}{
		{"types", func(d *sdk.Description) {
			for i := 0; i < MaxConnectionTypes; i++ {
				ct := d.ConnectionTypes[0]
				ct.Key = fmt.Sprintf("fake.t%d", i)
				d.ConnectionTypes = append(d.ConnectionTypes, ct)
			}
		}, "51 connection types, more than the limit of 50"},
		{"inputs", func(d *sdk.Description) {
			for i := 0; i < MaxInputsPerType; i++ {
				d.ConnectionTypes[0].Inputs = append(d.ConnectionTypes[0].Inputs, sdk.Input{Key: fmt.Sprintf("in%d", i), Label: "x", Type: sdk.InputString})
			}
		}, "102 inputs, more than the limit of 100"},
		{"options", func(d *sdk.Description) {
			in := &d.ConnectionTypes[0].Inputs[1]
			for i := 0; i < MaxOptionsPerInput; i++ {
				in.Options = append(in.Options, sdk.Option{Value: fmt.Sprint(i), Label: "x"})
			}
		}, `input "region": declares 102 options, more than the limit of 100`},
		{"type key", func(d *sdk.Description) { d.ConnectionTypes[0].Key = "fake." + long(MaxKeyLen) }, "connection type key is 105 bytes long"},
		{"input key", func(d *sdk.Description) { d.ConnectionTypes[0].Inputs[0].Key = long(MaxKeyLen + 1) }, "input key is 101 bytes long"},
		{"label", func(d *sdk.Description) { d.ConnectionTypes[0].Label = long(MaxLabelLen + 1) }, "label is 201 bytes long, more than the limit of 200"},
		{"description", func(d *sdk.Description) { d.ConnectionTypes[0].Inputs[0].Description = long(MaxDescriptionLen + 1) }, `input "apiKey": description is 2001 bytes long`},
		{"pattern", func(d *sdk.Description) { d.ConnectionTypes[0].Inputs[0].Pattern = long(MaxPatternLen + 1) }, "pattern is 1001 bytes long"},
		{"template", func(d *sdk.Description) {
			d.ConnectionTypes[0].Inputs = append(d.ConnectionTypes[0].Inputs, sdk.Input{Key: "t", Label: "T", Type: sdk.InputTemplate, Template: long(MaxTemplateLen + 1)})
		}, "template is 1001 bytes long"},
		{"icon URL", func(d *sdk.Description) { d.ConnectionTypes[0].IconURL = "https://x/" + long(MaxURLLen) }, "icon URL is 2010 bytes long"},
		{"token URL", func(d *sdk.Description) {
			d.ConnectionTypes[0].OAuth2 = &sdk.OAuth2Spec{TokenURL: "https://x/" + long(MaxURLLen)}
		}, "OAuth2 token URL is 2010 bytes long"},
		{"option label", func(d *sdk.Description) { d.ConnectionTypes[0].Inputs[1].Options[0].Label = long(MaxLabelLen + 1) }, "option label is 201 bytes long"},
		{"total size", func(d *sdk.Description) {
			for i := 1; i < MaxConnectionTypes; i++ {
				ct := d.ConnectionTypes[0]
				ct.Key = fmt.Sprintf("fake.t%d", i)
				ct.Inputs = nil
				for j := 0; j < 20; j++ {
					ct.Inputs = append(ct.Inputs, sdk.Input{Key: fmt.Sprintf("in%d", j), Label: "x", Type: sdk.InputString, Description: long(MaxDescriptionLen)})
				}
				d.ConnectionTypes = append(d.ConnectionTypes, ct)
			}
		}, "more than the limit of 1048576"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := fakeDescription()
			tt.change(d)
			err := acceptDescription(d)
			var dis *disableError
			if !errors.As(err, &dis) {
				t.Fatalf("err = %v, want a disableError", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "description refused: ") {
				t.Errorf("err = %q, want it to name %q", err, tt.want)
			}
			if strings.Contains(err.Error(), long(50)) {
				t.Errorf("err quotes the oversized text: %.200s", err)
			}
		})
	}
}

func TestSanitizeDisplay(t *testing.T) {
	for in, want := range map[string]string{
		"":                            "",
		"plain text":                  "plain text",
		"tab\tand\nnewline\r":         "tab\tand\nnewline",
		"\u202eevil\u202c":            "evil",
		"\u2066a\u2067b\u2068c\u2069": "abc",
		"bad\xffutf8\xc3":             "badutf8",
		"keep é 中 \uFFFD":             "keep é 中 \uFFFD",
		"c1\u0085\u009bcontrols":      "c1controls",
	} {
		if got := SanitizeDisplay(in); got != want {
			t.Errorf("SanitizeDisplay(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOversizedDescribeIsDisabled(t *testing.T) {
	dir := pluginDir(t, "asana", "faulty")
	mustPin(t, dir)
	t.Setenv("FAULTY_OVERSIZED_DESCRIBE", "1")
	h := newTestHost(t, dir, nil)
	h.start(t)
	p := h.info(t, "faulty")
	if p.Status != StatusDisabled || !strings.Contains(p.LastError, "description is 5000 bytes long, more than the limit of 2000") {
		t.Errorf("faulty = %+v, want DISABLED naming the description limit", p)
	}
	if _, ok := h.Types()[echoType]; ok {
		t.Error("the refused plugin's type is declared")
	}
	if p := h.info(t, "asana"); p.Status != StatusLoaded {
		t.Errorf("asana = %+v", p)
	}
}
