package connection

import (
	"regexp"
	"strconv"

	"github.com/plugboard/plugboard/ent/schema/schematype"
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
