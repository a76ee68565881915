package sdk

import (
	"errors"
	"strings"
	"testing"
)

var (
	fuzzInputTypes = []InputType{
		InputString, InputPassword, InputText, InputBoolean, InputPicklist,
		InputURL, InputNumber, InputJSON, "", "BOGUS",
	}
	fuzzCollections = []Collection{"", CollectionNone, CollectionValueList, CollectionKeyValueList, "BOGUS"}
)

// fuzzType builds a connection type from fuzzed declarations: the input
// "x" has the fuzzed type, collection, pattern, options and default; "y" is
// a plain string; "t" is a TEMPLATE input with the fuzzed template.
func fuzzType(kind, coll uint8, pattern, options, def, tmpl string) *ConnectionType {
	x := Input{
		Key:        "x",
		Label:      "Field X",
		Type:       fuzzInputTypes[int(kind)%len(fuzzInputTypes)],
		Required:   kind&0x80 != 0,
		Default:    def,
		Pattern:    pattern,
		Collection: fuzzCollections[int(coll)%len(fuzzCollections)],
	}
	if options != "" {
		for _, o := range strings.Split(options, "|") {
			x.Options = append(x.Options, Option{Value: o, Label: "label of " + o})
		}
	}
	return &ConnectionType{
		Key: "fuzz.type",
		Inputs: []Input{
			x,
			{Key: "y", Label: "Field Y", Type: InputString, Required: coll&0x80 != 0},
			{Key: "t", Label: "Field T", Type: InputTemplate, Template: tmpl},
		},
	}
}

// declarationText is every text of ct a diagnostic may legitimately quote,
// plus the fixed text of the diagnostics ct gives for probe values.
func declarationText(ct *ConnectionType) string {
	var b strings.Builder
	for _, in := range ct.Inputs {
		var opts []string
		for _, o := range in.Options {
			opts = append(opts, o.Value)
		}
		for _, s := range []string{in.Key, in.Label, in.Pattern, in.Default, in.Template, strings.Join(opts, ", ")} {
			b.WriteString(s)
			b.WriteString("\x00")
		}
	}
	for _, probe := range []string{"", "\x01", `["\u0001"]`, `[{"key":"k","value":"\u0001"}]`, `[{}]`, "{"} {
		for _, d := range ValidateValues(ct, map[string]string{"x": probe, "y": probe}) {
			b.WriteString(d.Summary)
			b.WriteString("\x00")
			b.WriteString(d.Detail)
			b.WriteString("\x00")
		}
	}
	return b.String()
}

// FuzzValidateValues feeds ValidateValues and ResolveValues arbitrary
// declarations (type, collection, pattern, options, default, template) and
// values. Neither may panic; diagnostics name declared inputs only and never
// quote the value; values that pass resolve (when the template is well
// formed and names declared inputs) and still pass once resolved.
func FuzzValidateValues(f *testing.F) {
	f.Add(uint8(0), uint8(0), "[a-z]+", "", "", "https://{{#x}}.example.com", "acme", "y-value")
	f.Add(uint8(4), uint8(1), "", "eu|us", "eu", "{{#x}}/{{#y}}", "apac-secret-value", "")
	f.Add(uint8(0x86), uint8(2), "", "", "", "{{#nope}}", `["1","two","3"]`, "")
	f.Add(uint8(7), uint8(3), "", "", "", "{{#y", `[{"key":"a","value":"{\"b\":1}"}]`, "zzz")
	f.Add(uint8(5), uint8(0x80), "https://.*", "", "https://example.com", "}}", "ftp://secret-host.internal/x", "")
	f.Add(uint8(3), uint8(0), "(", "", "", "", "maybe-true", "")
	f.Fuzz(func(t *testing.T, kind, coll uint8, pattern, options, def, tmpl, value, other string) {
		ct := fuzzType(kind, coll, pattern, options, def, tmpl)
		values := map[string]string{"x": value, "y": other, "undeclared": value}
		ds := ValidateValues(ct, values)

		decl := declarationText(ct)
		for _, d := range ds {
			if d.Field != "x" && d.Field != "y" {
				t.Fatalf("diagnostic about %q, which is not a checked input: %+v", d.Field, d)
			}
			if d.Severity != SeverityError {
				t.Fatalf("ValidateValues gave a %s diagnostic: %+v", d.Severity, d)
			}
			for _, v := range []string{value, other} {
				if len(v) >= 8 && !strings.Contains(decl, v) && strings.Contains(d.Summary+"\x00"+d.Detail, v) {
					t.Fatalf("diagnostic %+v quotes the value %q", d, v)
				}
			}
		}

		resolved, err := ResolveValues(ct, values)
		slots, slotErr := TemplateSlots(tmpl)
		if slotErr != nil {
			if err == nil || !errors.Is(err, ErrInvalidTemplate) {
				t.Fatalf("malformed template %q: ResolveValues error %v, want ErrInvalidTemplate", tmpl, err)
			}
			return
		}
		declared := true
		for _, s := range slots {
			if ct.Input(s) == nil {
				declared = false
			}
		}
		if !declared {
			if err == nil && tmpl != "" {
				// A slot naming an undeclared key resolves only when values
				// happens to hold the key.
				for _, s := range slots {
					if _, ok := values[s]; !ok && ct.Input(s) == nil {
						t.Fatalf("template slot %q names no value, yet ResolveValues succeeded", s)
					}
				}
			}
			return
		}
		if HasErrors(ds) {
			return
		}
		if err != nil {
			t.Fatalf("values pass ValidateValues but ResolveValues fails: %v", err)
		}
		for _, in := range ct.Inputs {
			if _, ok := resolved[in.Key]; !ok {
				t.Fatalf("resolved values lack input %q", in.Key)
			}
		}
		if resolved["undeclared"] != value {
			t.Fatalf("ResolveValues dropped or changed an undeclared key")
		}
		wantX := value
		if wantX == "" {
			wantX = def
		}
		if resolved["x"] != wantX {
			t.Fatalf("resolved x = %q, want %q", resolved["x"], wantX)
		}
		if ds := ValidateValues(ct, resolved); HasErrors(ds) {
			t.Fatalf("values pass ValidateValues but not once resolved: %+v", ds)
		}
	})
}
