package globalid

import (
	"errors"
	"testing"
)

func TestUnmarshalID(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want int
		err  error
	}{
		{name: "encoded id", in: Encode(42), want: 42},
		{name: "null optional id", in: nil, want: 0},
		{name: "not a string", in: 42, err: ErrInvalid},
		{name: "raw row id", in: "42", err: ErrInvalid},
		{name: "empty", in: "", err: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := UnmarshalID(tt.in)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Fatalf("UnmarshalID(%#v) = %d, %v; want %d, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}
