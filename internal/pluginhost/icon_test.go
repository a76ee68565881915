package pluginhost

import (
	"strings"
	"testing"

	"github.com/plugboard/plugboard/plugins/sdk"
)

func TestSafeSVG(t *testing.T) {
	ok := `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><defs><linearGradient id="g"/></defs><rect width="8" height="8" fill="url(#g)"/></svg>`
	for _, c := range []struct {
		name, svg string
		want      bool
	}{
		{"plain", ok, true},
		{"with an XML declaration", `<?xml version="1.0"?>` + ok, true},
		{"not svg", `<html><body/></html>`, false},
		{"script", `<svg><script>alert(1)</script></svg>`, false},
		{"event handler", `<svg onload="alert(1)"/>`, false},
		{"foreignObject", `<svg><foreignObject><div/></foreignObject></svg>`, false},
		{"external href", `<svg><a href="https://evil.example"><rect/></a></svg>`, false},
		{"external url()", `<svg><rect style="fill:url(https://evil.example/x)"/></svg>`, false},
		{"style import", `<svg><style>@import "https://evil.example/x.css";</style></svg>`, false},
		{"image", `<svg><image href="#x"/></svg>`, false},
		{"DTD", `<!DOCTYPE svg [<!ENTITY x "y">]><svg/>`, false},
		{"unclosed", `<svg><rect>`, false},
		{"too big", `<svg>` + strings.Repeat(" ", sdk.MaxIconSVG) + `</svg>`, false},
		{"empty", ``, false},
	} {
		if got := SafeSVG([]byte(c.svg)); got != c.want {
			t.Errorf("%s: SafeSVG = %v, want %v", c.name, got, c.want)
		}
	}
}
