package sdk

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestRenderTemplate(t *testing.T) {
	values := map[string]string{"shop": "acme", "region": "eu", "empty": "", "a.b-c_d": "x"}
	tests := []struct {
		tmpl    string
		want    string
		wantErr error
	}{
		{tmpl: "https://{{#shop}}.myshopify.com/admin", want: "https://acme.myshopify.com/admin"},
		{tmpl: "{{#shop}}{{#region}}{{#shop}}", want: "acmeeuacme"},
		{tmpl: "no slots", want: "no slots"},
		{tmpl: "", want: ""},
		{tmpl: "{{#empty}}/x", want: "/x"},
		{tmpl: "{{#a.b-c_d}}", want: "x"},
		{tmpl: "single { and } braces, {a}", want: "single { and } braces, {a}"},
		{tmpl: "{{#shop}}}", want: "acme}"},
		{tmpl: "{{#missing}}", wantErr: ErrMissingValue},
		{tmpl: "{{#}}", wantErr: ErrInvalidTemplate},
		{tmpl: "{{#shop", wantErr: ErrInvalidTemplate},
		{tmpl: "{{shop}}", wantErr: ErrInvalidTemplate},
		{tmpl: "{{ #shop}}", wantErr: ErrInvalidTemplate},
		{tmpl: "{{# shop}}", wantErr: ErrInvalidTemplate},
		{tmpl: "{{#shop }}", wantErr: ErrInvalidTemplate},
		{tmpl: "{{#1shop}}", wantErr: ErrInvalidTemplate},
		{tmpl: "{{#sh{op}}", wantErr: ErrInvalidTemplate},
		{tmpl: "a}}b", wantErr: ErrInvalidTemplate},
		{tmpl: "{{#shop}}}}", wantErr: ErrInvalidTemplate},
		{tmpl: "{{{#shop}}", wantErr: ErrInvalidTemplate},
		{tmpl: "x{{", wantErr: ErrInvalidTemplate},
	}
	for _, tt := range tests {
		got, err := RenderTemplate(tt.tmpl, values)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("RenderTemplate(%q) = %q, %v; want error %v", tt.tmpl, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("RenderTemplate(%q) = %q, %v; want %q", tt.tmpl, got, err, tt.want)
		}
	}
}

func TestRenderTemplateErrorsNeverQuoteValues(t *testing.T) {
	_, err := RenderTemplate("{{#token}}{{#missing}}", map[string]string{"token": "canary-secret-7f3a"})
	if err == nil || strings.Contains(err.Error(), "canary") {
		t.Fatalf("err = %v, want an error without the value", err)
	}
}

func TestTemplateSlots(t *testing.T) {
	got, err := TemplateSlots("{{#b}}-{{#a}}-{{#b}}")
	if err != nil || !reflect.DeepEqual(got, []string{"b", "a"}) {
		t.Fatalf("TemplateSlots = %v, %v; want [b a]", got, err)
	}
	got, err = TemplateSlots("plain")
	if err != nil || got != nil {
		t.Fatalf("TemplateSlots(plain) = %v, %v; want no slots", got, err)
	}
	if _, err := TemplateSlots("{{#a"); !errors.Is(err, ErrInvalidTemplate) {
		t.Fatalf("TemplateSlots of an unclosed slot: err = %v", err)
	}
}

// FuzzRenderTemplate checks that TemplateSlots and RenderTemplate agree on
// what is a valid template, and that a valid template is exactly its text
// and its slots: rendering each slot as itself gives the template back.
func FuzzRenderTemplate(f *testing.F) {
	for _, s := range []string{
		"https://{{#shop}}.myshopify.com/admin",
		"{{#a}}{{#b}}",
		"{{#a",
		"}}",
		"{{}}",
		"{{#}}",
		"{ {#a} }",
	} {
		f.Add(s, "value")
	}
	f.Fuzz(func(t *testing.T, tmpl, value string) {
		slots, slotsErr := TemplateSlots(tmpl)

		identity := map[string]string{}
		for _, k := range slots {
			identity[k] = "{{#" + k + "}}"
		}
		got, err := RenderTemplate(tmpl, identity)
		if (err == nil) != (slotsErr == nil) {
			t.Fatalf("TemplateSlots error %v but RenderTemplate error %v", slotsErr, err)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidTemplate) {
				t.Fatalf("invalid template error %v does not wrap ErrInvalidTemplate", err)
			}
			return
		}
		if got != tmpl {
			t.Fatalf("rendering each slot as itself gave %q, want the template %q", got, tmpl)
		}

		values := map[string]string{}
		for _, k := range slots {
			if err := checkSlotKey(k); err != nil {
				t.Fatalf("TemplateSlots returned a bad key %q: %v", k, err)
			}
			values[k] = value
		}
		if _, err := RenderTemplate(tmpl, values); err != nil {
			t.Fatalf("RenderTemplate with a value for every slot: %v", err)
		}
		if len(slots) > 0 {
			delete(values, slots[0])
			if _, err := RenderTemplate(tmpl, values); !errors.Is(err, ErrMissingValue) {
				t.Fatalf("RenderTemplate without a value for %q: err = %v, want ErrMissingValue", slots[0], err)
			}
		}
	})
}
