package connection

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/ent/schema/schematype"
)

// fuzzInputs is the fixed declaration FuzzSaveValues saves values for.
var fuzzInputs = []schematype.Input{
	{Key: "apiKey", Label: "API key", Type: "PASSWORD", Secret: true, Required: true},
	{Key: "host", Label: "Host", Type: "STRING", Required: true, Pattern: `[a-z0-9.-]+`},
	{Key: "region", Label: "Region", Type: "PICKLIST", Options: []schematype.Option{{Value: "eu", Label: "Europe"}, {Value: "us", Label: "United States"}}},
	{Key: "port", Label: "Port", Type: "NUMBER", Default: "443"},
	{Key: "tags", Label: "Tags", Type: "STRING", Collection: "VALUE_LIST"},
	{Key: "headers", Label: "Headers", Type: "JSON", Collection: "KEY_VALUE_LIST"},
	{Key: "flag", Label: "Flag", Type: "BOOLEAN"},
	{Key: "baseUrl", Label: "Base URL", Type: "TEMPLATE", Template: "https://{{#host}}:{{#port}}/{{#region}}"},
}

// fuzzValueInputs decodes a save: keys and values are "\n"-separated and
// paired by position; bit i of clearMask / nilMask clears / leaves out
// value i; repeat more values are added (cycling the keys, to cross
// MaxValues); the first value is repeated grow times (to cross the size
// limits).
func fuzzValueInputs(keys, vals string, clearMask, nilMask uint64, repeat uint8, grow uint16) []ValueInput {
	ks := strings.Split(keys, "\n")
	vs := strings.Split(vals, "\n")
	n := len(ks) + int(repeat)
	out := make([]ValueInput, 0, n)
	for i := 0; i < n; i++ {
		in := ValueInput{Key: ks[i%len(ks)], Clear: clearMask&(1<<(i%64)) != 0}
		if nilMask&(1<<(i%64)) == 0 {
			v := vs[i%len(vs)]
			if i == 0 && grow > 1 && len(v) > 0 {
				times := min(int(grow), (MaxTotalBytes*2)/len(v)+1)
				v = strings.Repeat(v, times)
			}
			in.Value = &v
		}
		out = append(out, in)
	}
	return out
}

// FuzzSaveValues fuzzes the host's own checks of a save (applyValues, then
// staticCheck on the merged values) against a fixed declaration: they never
// panic, the size and count limits hold, undeclared and computed inputs
// are refused and never stored, secrets land only in the secret map, and
// no message depends on (or quotes) a secret value.
func FuzzSaveValues(f *testing.F) {
	f.Add("apiKey\nhost\nregion", "sk_live_secret_value\napi.example.com\neu", uint64(0), uint64(0), uint8(0), uint16(0))
	f.Add("nope\nbaseUrl\nhost\nhost", "x\ny\nBAD HOST\nz", uint64(0), uint64(0), uint8(0), uint16(0))
	f.Add("apiKey\nport", "x\nnot-a-number", uint64(1), uint64(2), uint8(0), uint16(0))
	f.Add("tags\nheaders\nflag", "[\"a\",1]\n[{\"key\":\"k\"}]\nyes", uint64(0), uint64(0), uint8(0), uint16(0))
	f.Add("host", "a", uint64(0), uint64(0), uint8(120), uint16(0))
	f.Add("apiKey", "0123456789abcdef", uint64(0), uint64(0), uint8(0), uint16(2000))
	f.Fuzz(func(t *testing.T, keys, vals string, clearMask, nilMask uint64, repeat uint8, grow uint16) {
		vi := fuzzValueInputs(keys, vals, clearMask, nilMask, repeat, grow)
		plain := map[string]string{"host": "stored.example.com", "stray": "kept"}
		secretVals := map[string]string{"apiKey": "stored-secret-value"}
		before := [2]map[string]string{mapsClone(plain), mapsClone(secretVals)}

		changed, errs := applyValues(fuzzInputs, vi, plain, secretVals)

		if len(vi) > MaxValues {
			if len(errs) != 1 || errs[0].Code != CodeTooMany || changed != nil {
				t.Fatalf("%d values: errs %+v, changed %v; want one %s error", len(vi), errs, changed, CodeTooMany)
			}
			if !reflect.DeepEqual(before, [2]map[string]string{plain, secretVals}) {
				t.Fatalf("a refused save of %d values changed the stored values", len(vi))
			}
			return
		}
		if !slices.IsSorted(changed) {
			t.Fatalf("changed keys not sorted: %v", changed)
		}
		for _, k := range changed {
			in := findInput(fuzzInputs, k)
			if in == nil || in.Type == "TEMPLATE" {
				t.Fatalf("changed names %q, which is not a settable input", k)
			}
		}
		for i, m := range []map[string]string{plain, secretVals} {
			for k, v := range m {
				if len(v) > MaxValueBytes {
					t.Fatalf("stored a value of %d bytes for %q", len(v), k)
				}
				if k == "stray" {
					continue
				}
				in := findInput(fuzzInputs, k)
				switch {
				case in == nil:
					t.Fatalf("stored undeclared key %q", k)
				case in.Type == "TEMPLATE":
					t.Fatalf("stored computed input %q", k)
				case in.Secret != (i == 1):
					t.Fatalf("input %q stored in the wrong map", k)
				}
			}
		}
		// The size limits, counted as a save counts: the first value of
		// each settable input.
		wantTooLong, total := false, 0
		seen := map[string]bool{}
		for _, in := range vi {
			d := findInput(fuzzInputs, in.Key)
			if d == nil || seen[in.Key] || d.Type == "TEMPLATE" {
				continue
			}
			seen[in.Key] = true
			if in.Value == nil || in.Clear {
				continue
			}
			if len(*in.Value) > MaxValueBytes {
				wantTooLong = true
				continue
			}
			total += len(*in.Value)
		}
		if total > MaxTotalBytes {
			wantTooLong = true
		}
		if wantTooLong && !hasCode(errs, CodeTooLong) {
			t.Fatalf("values over the size limits (total %d bytes) but no %s error: %+v", total, CodeTooLong, errs)
		}
		for _, in := range vi {
			d := findInput(fuzzInputs, in.Key)
			if d == nil && !hasErrFor(errs, CodeUnknownInput, clip(in.Key, 100)) {
				t.Fatalf("undeclared key %q not refused: %+v", in.Key, errs)
			}
			if d != nil && d.Type == "TEMPLATE" && !hasErrFor(errs, CodeReadOnly, in.Key) {
				t.Fatalf("computed input %q not refused: %+v", in.Key, errs)
			}
		}
		for _, e := range errs {
			if len(e.Field) == 0 || e.Field[0] != "values" {
				t.Fatalf("error without a values path: %+v", e)
			}
		}

		merged := mergeValues(plain, secretVals)
		serrs := staticCheck(fuzzInputs, merged)
		for _, e := range serrs {
			if len(e.Field) != 2 || e.Field[0] != "values" || findInput(fuzzInputs, e.Field[1]) == nil {
				t.Fatalf("static check error about no declared input: %+v", e)
			}
		}
		// The secret's value never shapes a message: the same values with
		// another non-empty secret give the same errors.
		if merged["apiKey"] != "" {
			other := mapsClone(merged)
			other["apiKey"] = "\x01"
			if oerrs := staticCheck(fuzzInputs, other); !reflect.DeepEqual(serrs, oerrs) {
				t.Fatalf("static check errors depend on the secret value:\n%+v\n%+v", serrs, oerrs)
			}
			if s := merged["apiKey"]; len(s) >= 8 {
				for _, e := range append(errs, serrs...) {
					if strings.Contains(e.Message, s) {
						t.Fatalf("message quotes the secret value: %+v", e)
					}
				}
			}
		}
	})
}

func mapsClone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func hasCode(errs []FieldError, code string) bool {
	for _, e := range errs {
		if e.Code == code {
			return true
		}
	}
	return false
}

func hasErrFor(errs []FieldError, code, key string) bool {
	for _, e := range errs {
		if e.Code == code && len(e.Field) == 2 && e.Field[1] == key {
			return true
		}
	}
	return false
}
