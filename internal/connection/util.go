package connection

import (
	"regexp"
	"strconv"

	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/internal/textrule"
)

var stableKeyPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func findInput(inputs []schematype.Input, key string) *schematype.Input {
	for i := range inputs {
		if inputs[i].Key == key {
			return &inputs[i]
		}
	}
	return nil
}

// clip shortens s for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// quote quotes a key (never a value) for a message.
func quote(key string) string { return strconv.Quote(clip(key, 100)) }

// textKind is what a caller's string is, for checkChars.
type textKind int

const (
	identifier  textKind = iota // an external id or a key: no control character
	displayText                 // a name, a label, a description: tabs and line breaks only
)

// checkChars is the one check of the characters of a string a caller
// gives, the same on every database: it returns a field error at path
// when value holds invalid UTF-8 or a control character its kind refuses.
func checkChars(value string, kind textKind, path ...string) []FieldError {
	why := textrule.Text(value)
	if kind == identifier {
		why = textrule.Identifier(value)
	}
	if why == "" {
		return nil
	}
	what := "The text"
	if kind == identifier {
		what = "The identifier"
	}
	return []FieldError{fieldErr(CodeInvalidValue, what+" "+why+".", path...)}
}
