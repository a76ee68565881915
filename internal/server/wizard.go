package server

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"strings"

	"github.com/plugboard/plugboard/internal/connection/scopes"
)

// The reference config wizard at GET /wizard?instance=<id>#token=<token>:
// one self-contained page (no external asset) that loads configWizard over
// fetch and renders each connection slot. The token travels in the URL
// fragment, which browsers never send to a server, and is removed from the
// address bar once read. Everything the API returns is put into the page
// with textContent, never as HTML.

const wizardCSS = `
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:44rem;padding:0 1rem;color:#1d2330}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin:0 0 .25rem}
section{border:1px solid #d5d9e0;border-radius:8px;padding:1rem;margin:1rem 0}
label{display:block;margin:.6rem 0 .15rem;font-weight:600}
input[type=text],input[type=password],input[type=url],input[type=number],select,textarea{width:100%;box-sizing:border-box;padding:.35rem;font:inherit}
textarea{min-height:5rem}.help{color:#5a6270;font-size:.85rem}.status{color:#5a6270}
.error{color:#b00020;font-size:.9rem}.ok{color:#0a7a32}button{margin-top:.8rem;padding:.4rem .9rem;font:inherit}
`

// wizardScript is the page's script; SAVE_HOLDER_FIELDS stands for the
// scope table's answer to which field of a save names a slot's holder.
const wizardScript = `
(function () {
  "use strict";
  var SAVE_HOLDER = SAVE_HOLDER_FIELDS;
  var root = document.getElementById("wizard");
  var instanceID = root.getAttribute("data-instance");
  var m = /(?:^|&)token=([^&]*)/.exec(location.hash.slice(1));
  var token = m ? decodeURIComponent(m[1]) : "";
  if (m) { history.replaceState(null, "", location.pathname + location.search); }

  var WIZARD = "query Wizard($id: ID!) { configWizard(instanceID: $id) {" +
    " instance { id name customerID }" +
    " pages { key title elements { slotKey label connectionID scope typeKey typeLabel authKind action" +
    " credential { id status } status connected connectLabel" +
    " fields { key label type required default placeholder description secret options { value label } value isSet }" +
    " existing { id status } errors { field code message } } } } }";
  var SAVE = "mutation Save($in: SaveCredentialInput!) { saveCredential(input: $in) {" +
    " credential { id status } userErrors { field code message } } }";
  var START = "mutation Start($in: StartOAuth2Input!) { startOAuth2(input: $in) { authorizeURL } }";
  var BIND = "mutation Bind($in: BindInstanceConnectionInput!) { bindInstanceConnection(input: $in) {" +
    " userErrors { field code message } } }";

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) { if (Object.prototype.hasOwnProperty.call(attrs, k)) { e.setAttribute(k, attrs[k]); } }
    if (text !== undefined && text !== null) { e.textContent = text; }
    return e;
  }
  function gql(query, variables) {
    return fetch("/graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Authorization": "Bearer " + token },
      body: JSON.stringify({ query: query, variables: variables })
    }).then(function (r) { return r.json(); });
  }
  function problem(text) { root.replaceChildren(el("p", { "class": "error" }, text)); }

  function control(f) {
    var id = "f-" + Math.random().toString(36).slice(2);
    var c;
    switch (f.type) {
      case "PASSWORD":
        c = el("input", { type: "password", autocomplete: "off" });
        if (f.isSet) { c.placeholder = "set; leave empty to keep"; }
        break;
      case "PICKLIST":
        c = el("select", {});
        c.appendChild(el("option", { value: "" }, "—"));
        f.options.forEach(function (o) { c.appendChild(el("option", { value: o.value }, o.label || o.value)); });
        c.value = f.value !== null ? f.value : (f["default"] || "");
        break;
      case "BOOLEAN":
        c = el("input", { type: "checkbox" });
        c.checked = (f.value !== null ? f.value : f["default"]) === "true";
        break;
      case "TEXT": case "JSON":
        c = el("textarea", {});
        c.value = f.value || "";
        break;
      case "NUMBER": c = el("input", { type: "number" }); c.value = f.value || ""; break;
      case "URL": c = el("input", { type: "url" }); c.value = f.value || ""; break;
      default: c = el("input", { type: "text" }); c.value = f.value || "";
    }
    if (f.type !== "PASSWORD" && f.placeholder && c.tagName !== "SELECT") { c.placeholder = f.placeholder; }
    if (f.required) { c.required = true; }
    c.id = id;
    return c;
  }

  // form renders the fields of a slot; it returns the values getter and the
  // function that shows errors next to the fields.
  function form(section, e) {
    var controls = {}, errs = {};
    e.fields.forEach(function (f) {
      var lab = el("label", {}, f.label + (f.required ? " *" : ""));
      var c = control(f);
      lab.setAttribute("for", c.id);
      section.appendChild(lab);
      section.appendChild(c);
      if (f.description) { section.appendChild(el("div", { "class": "help" }, f.description)); }
      errs[f.key] = section.appendChild(el("div", { "class": "error" }));
      controls[f.key] = { f: f, c: c };
    });
    var general = section.appendChild(el("div", { "class": "error" }));
    function values() {
      var out = [];
      Object.keys(controls).forEach(function (k) {
        var x = controls[k], v;
        if (x.f.type === "BOOLEAN") { v = x.c.checked ? "true" : "false"; } else { v = x.c.value; }
        if (x.f.secret && v === "") { return; } // keep the stored secret
        if (!x.f.secret && v === "" && x.f.value === null) { return; }
        out.push({ key: k, value: v });
      });
      return out;
    }
    function showErrors(list) {
      Object.keys(errs).forEach(function (k) { errs[k].textContent = ""; });
      general.textContent = "";
      (list || []).forEach(function (u) {
        var k = u.field && u.field[0] === "values" ? u.field[1] : null;
        var target = k && errs[k] ? errs[k] : general;
        target.textContent = (target.textContent ? target.textContent + " " : "") + u.message;
      });
    }
    showErrors(e.errors);
    return { values: values, showErrors: showErrors };
  }

  function saveInput(w, e, values) {
    var input = { connectionID: e.connectionID, values: values };
    var holder = { customerID: w.instance.customerID, instanceID: w.instance.id };
    var f = SAVE_HOLDER[e.scope];
    if (f) { input[f] = holder[f]; }
    return input;
  }

  function render(w) {
    root.replaceChildren(el("h1", {}, w.instance.name));
    w.pages.forEach(function (page) {
      root.appendChild(el("h2", {}, page.title));
      page.elements.forEach(function (e) {
        var s = el("section", { "data-slot": e.slotKey });
        s.appendChild(el("h2", {}, e.label));
        s.appendChild(el("div", { "class": "status" }, e.typeLabel + " · " + (e.status || "not set up")));
        root.appendChild(s);
        if (e.action === "MANAGED_BY_ORG") {
          s.appendChild(el("p", { "class": "status" }, "Managed by your provider. Status: " + (e.status || "not set up") + "."));
          return;
        }
        if (e.action === "SELECT_EXISTING") {
          var sel = el("select", {});
          e.existing.forEach(function (c) { sel.appendChild(el("option", { value: c.id }, "Existing connection (" + c.status + ")")); });
          s.appendChild(el("label", {}, "Use an existing connection"));
          s.appendChild(sel);
          var use = s.appendChild(el("button", { type: "button" }, "Use this connection"));
          var bindErr = s.appendChild(el("div", { "class": "error" }));
          use.addEventListener("click", function () {
            gql(BIND, { "in": { instanceID: w.instance.id, slotKey: e.slotKey, credentialID: sel.value } }).then(function (r) {
              var ue = r.data && r.data.bindInstanceConnection ? r.data.bindInstanceConnection.userErrors : [];
              if (r.errors && !ue.length) { bindErr.textContent = r.errors[0].message; return; }
              if (ue.length) { bindErr.textContent = ue[0].message; return; }
              load();
            });
          });
          if (!e.fields.length) { return; }
          s.appendChild(el("p", { "class": "help" }, "Or enter a new one:"));
        }
        var f = form(s, e);
        if (e.action === "OAUTH_CONNECT") {
          if (e.connected) { s.appendChild(el("p", { "class": "ok" }, "Connected.")); }
          var btn = s.appendChild(el("button", { type: "button" }, e.connectLabel || "Connect"));
          btn.addEventListener("click", function () { connect(w, e, f); });
          return;
        }
        var save = s.appendChild(el("button", { type: "button" }, "Save"));
        save.addEventListener("click", function () {
          gql(SAVE, { "in": saveInput(w, e, f.values()) }).then(function (r) {
            var p = r.data && r.data.saveCredential;
            if (p && p.userErrors.length) { f.showErrors(p.userErrors); return; }
            if (r.errors) { f.showErrors([{ field: [], message: r.errors[0].message }]); return; }
            load();
          });
        });
      });
    });
  }

  // connect saves the visible fields when needed, then opens the provider in
  // a popup; the callback page posts {type: "plugboard:oauth"} back.
  function connect(w, e, f) {
    var vals = f.values();
    var ready = (!e.credential || vals.length)
      ? gql(SAVE, { "in": saveInput(w, e, vals) }).then(function (r) {
          var p = r.data && r.data.saveCredential;
          if (p && p.userErrors.length) { f.showErrors(p.userErrors); return null; }
          if (!p || !p.credential) { f.showErrors([{ field: [], message: r.errors ? r.errors[0].message : "Could not save." }]); return null; }
          return p.credential.id;
        })
      : Promise.resolve(e.credential.id);
    var popup = window.open("about:blank", "plugboard-oauth", "popup,width=600,height=720");
    ready.then(function (id) {
      if (!id) { if (popup) { popup.close(); } return; }
      return gql(START, { "in": { credentialID: id, popup: true } }).then(function (r) {
        var p = r.data && r.data.startOAuth2;
        if (!p || !p.authorizeURL) { f.showErrors([{ field: [], message: r.errors ? r.errors[0].message : "Could not start." }]); if (popup) { popup.close(); } return; }
        if (popup) { popup.location.href = p.authorizeURL; } else { location.href = p.authorizeURL; }
      });
    });
  }

  window.addEventListener("message", function (ev) {
    if (ev.origin !== location.origin || !ev.data || ev.data.type !== "plugboard:oauth") { return; }
    load();
  });

  function load() {
    if (!instanceID) { problem("Open this page as /wizard?instance=<instance id>#token=<token>."); return; }
    if (!token) { problem("No token: add #token=<token> to the address."); return; }
    gql(WIZARD, { id: instanceID }).then(function (r) {
      if (r.errors || !r.data || !r.data.configWizard) {
        problem(r.errors ? r.errors[0].message : "No such instance.");
        return;
      }
      render(r.data.configWizard);
    }, function () { problem("plugboard did not answer."); });
  }
  load();
})();
`

// wizardJS is the page's script with the scope table's save fields.
var wizardJS = strings.Replace(wizardScript, "SAVE_HOLDER_FIELDS", saveHolderFieldsJSON(), 1)

func saveHolderFieldsJSON() string {
	b, err := json.Marshal(scopes.SaveHolderFields())
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	return string(b)
}

var wizardTemplate = template.Must(template.New("wizard").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Connections · plugboard</title>
<style>{{.CSS}}</style>
</head>
<body>
<main id="wizard" data-instance="{{.Instance}}"><p class="status">Loading…</p></main>
<script>{{.JS}}</script>
</body>
</html>
`))

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// wizardCSP allows only the page's own inline script and style (by hash)
// and requests to plugboard itself.
var wizardCSP = "default-src 'none'; script-src " + cspHash(wizardJS) + "; style-src " + cspHash(wizardCSS) +
	"; connect-src 'self'; img-src 'none'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

// wizardPage serves the reference config wizard.
func wizardPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", wizardCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Frame-Options", "DENY")
		instance := r.URL.Query().Get("instance")
		if len(instance) > 64 {
			instance = ""
		}
		_ = wizardTemplate.Execute(w, struct {
			CSS      template.CSS
			JS       template.JS
			Instance string
		}{template.CSS(wizardCSS), template.JS(wizardJS), instance})
	})
}
