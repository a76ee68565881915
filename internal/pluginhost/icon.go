package pluginhost

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"

	"github.com/plugboard/plugboard/plugins/sdk"
)

// SafeSVG reports whether icon is an SVG document the host may serve from
// its own origin: at most sdk.MaxIconSVG bytes, well-formed XML with an
// <svg> root, and nothing that runs or loads: no script or foreignObject
// element, no event handler attribute, no reference outside the document
// (href only to "#…", no url() but url(#…)), no processing instruction or
// DTD. The host also serves icons with a sandboxing CSP; this keeps out
// what a browser would otherwise try.
func SafeSVG(icon []byte) bool {
	if len(icon) == 0 || len(icon) > sdk.MaxIconSVG {
		return false
	}
	dec := xml.NewDecoder(bytes.NewReader(icon))
	dec.Strict = true
	depth := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return depth == 0
		}
		if err != nil {
			return false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if (depth == 0 && t.Name.Local != "svg") || !safeElement(t) {
				return false
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if externalURL(string(t)) {
				return false
			}
		case xml.Directive:
			return false
		case xml.ProcInst:
			if t.Target != "xml" {
				return false
			}
		}
	}
}

func safeElement(e xml.StartElement) bool {
	switch strings.ToLower(e.Name.Local) {
	case "script", "foreignobject", "iframe", "embed", "object", "image", "use", "animate", "set", "handler":
		return false
	}
	for _, a := range e.Attr {
		name := strings.ToLower(a.Name.Local)
		if strings.HasPrefix(name, "on") || externalURL(a.Value) {
			return false
		}
		if name == "href" && !strings.HasPrefix(a.Value, "#") {
			return false
		}
	}
	return true
}

// externalURL reports whether s holds a url() to anything but a fragment.
func externalURL(s string) bool {
	low := strings.ToLower(s)
	for {
		i := strings.Index(low, "url(")
		if i < 0 {
			return strings.Contains(low, "@import") || strings.Contains(low, "javascript:")
		}
		rest := strings.TrimLeft(low[i+4:], " \t\n'\"")
		if !strings.HasPrefix(rest, "#") {
			return true
		}
		low = rest
	}
}
