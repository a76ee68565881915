package sdk

import (
	"errors"
	"fmt"
	"strings"
)

// Template errors, wrapped with the details by RenderTemplate and
// TemplateSlots.
var (
	// ErrInvalidTemplate means the template itself is malformed.
	ErrInvalidTemplate = errors.New("invalid template")
	// ErrMissingValue means a slot names a key that has no value.
	ErrMissingValue = errors.New("template slot has no value")
)

// A template is text with {{#key}} slots, such as
// "https://{{#shop}}.myshopify.com/admin". The syntax is strict so that a
// typo fails loudly instead of producing a wrong URL:
//
//   - every "{{" opens a slot and must be followed by "#", a key and "}}";
//   - a key starts with a letter or "_" and holds letters, digits, "_", "-"
//     and "." (no spaces);
//   - a "}}" outside a slot is an error; single braces are plain text.
//
// There is no escaping: a template cannot produce a literal "{{".

type templatePart struct {
	text string // literal text, or the slot key when slot is true
	slot bool
}

func parseTemplate(tmpl string) ([]templatePart, error) {
	var parts []templatePart
	rest := tmpl
	pos := 0 // offset of rest in tmpl, for error messages
	for rest != "" {
		open := strings.Index(rest, "{{")
		text := rest
		if open >= 0 {
			text = rest[:open]
		}
		if i := strings.Index(text, "}}"); i >= 0 {
			return nil, fmt.Errorf("%w: \"}}\" without a matching \"{{#\" at offset %d", ErrInvalidTemplate, pos+i)
		}
		if text != "" {
			parts = append(parts, templatePart{text: text})
		}
		if open < 0 {
			break
		}
		pos += open
		rest = rest[open:]
		if !strings.HasPrefix(rest, "{{#") {
			return nil, fmt.Errorf("%w: \"{{\" at offset %d must start a {{#key}} slot", ErrInvalidTemplate, pos)
		}
		end := strings.Index(rest, "}}")
		if end < 0 {
			return nil, fmt.Errorf("%w: slot at offset %d is not closed with \"}}\"", ErrInvalidTemplate, pos)
		}
		key := rest[len("{{#"):end]
		if err := checkSlotKey(key); err != nil {
			return nil, fmt.Errorf("%w: slot at offset %d: %v", ErrInvalidTemplate, pos, err)
		}
		parts = append(parts, templatePart{text: key, slot: true})
		pos += end + len("}}")
		rest = rest[end+len("}}"):]
	}
	return parts, nil
}

func checkSlotKey(key string) error {
	if key == "" {
		return errors.New("empty key")
	}
	for i, r := range key {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_':
		case i > 0 && (r >= '0' && r <= '9' || r == '-' || r == '.'):
		default:
			return fmt.Errorf("key %q has a character %q that a key may not hold", truncate(key, 40), r)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// TemplateSlots returns the keys that the {{#key}} slots of tmpl name, in
// order of first appearance and without repeats. It fails with an error
// wrapping ErrInvalidTemplate if tmpl is malformed.
func TemplateSlots(tmpl string) ([]string, error) {
	parts, err := parseTemplate(tmpl)
	if err != nil {
		return nil, err
	}
	var keys []string
	seen := map[string]bool{}
	for _, p := range parts {
		if p.slot && !seen[p.text] {
			seen[p.text] = true
			keys = append(keys, p.text)
		}
	}
	return keys, nil
}

// RenderTemplate replaces each {{#key}} slot of tmpl with values[key]. It
// fails with an error wrapping ErrInvalidTemplate if tmpl is malformed and
// wrapping ErrMissingValue if a slot's key is not in values (an empty value
// is a value). Values are inserted as they are, not escaped, and are never
// part of an error.
func RenderTemplate(tmpl string, values map[string]string) (string, error) {
	parts, err := parseTemplate(tmpl)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, p := range parts {
		if !p.slot {
			b.WriteString(p.text)
			continue
		}
		v, ok := values[p.text]
		if !ok {
			return "", fmt.Errorf("%w: {{#%s}}", ErrMissingValue, p.text)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}
