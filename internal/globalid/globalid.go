// Package globalid is the GraphQL ID scalar: opaque global ids over ent's
// integer ids. Every ent type owns its own id range (ent's sql/globalid
// feature), so an id alone names its type; the encoding keeps clients from
// building ids by hand or relying on their order.
package globalid

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
)

const prefix = "pb1:"

// ErrInvalid is returned for a string that is not a plugboard id.
var ErrInvalid = errors.New("not a valid plugboard id")

// Encode returns the opaque global id of an ent id.
func Encode(id int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(prefix + strconv.Itoa(id)))
}

// Decode returns the ent id of an opaque global id.
func Decode(s string) (int, error) {
	if len(s) == 0 || len(s) > 64 {
		return 0, ErrInvalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, ErrInvalid
	}
	rest, ok := strings.CutPrefix(string(raw), prefix)
	if !ok {
		return 0, ErrInvalid
	}
	id, err := strconv.Atoi(rest)
	if err != nil || id <= 0 || strconv.Itoa(id) != rest {
		return 0, ErrInvalid
	}
	return id, nil
}

// MarshalID marshals an ent id as an opaque GraphQL ID.
func MarshalID(id int) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		_, _ = io.WriteString(w, strconv.Quote(Encode(id)))
	})
}

// UnmarshalID decodes a GraphQL ID into an ent id. A null (an optional
// id given as null) is 0, no id: required ids never reach here as null.
func UnmarshalID(v any) (int, error) {
	if v == nil {
		return 0, nil
	}
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("%w: an id is a string", ErrInvalid)
	}
	return Decode(s)
}
