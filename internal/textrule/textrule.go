// Package textrule says which characters plugboard takes in what a caller
// names things with, the same on SQLite and PostgreSQL: PostgreSQL refuses
// NUL and invalid UTF-8 in text, SQLite stores anything, so plugboard
// refuses them first, on both.
package textrule

import (
	"unicode"
	"unicode/utf8"
)

// Identifier returns why s cannot be an identifier a caller gives (an
// external id, a key), or "" when it can: identifiers are valid UTF-8
// without any control character (NUL, line breaks, tabs, escapes).
func Identifier(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "holds a control character (such as NUL, a tab or a line break)"
		}
	}
	return ""
}

// Text returns why s cannot be display text (a name, a label, a
// description), or "" when it can: valid UTF-8 whose only control
// characters are tabs and line breaks.
func Text(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
			return "holds a control character (such as NUL) other than a tab or a line break"
		}
	}
	return ""
}
