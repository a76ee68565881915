// plugboard's config wizard: the connections of one instance, rendered in
// plugboard's own origin. Embedded (an iframe made by plugboard.js) it gets
// its token, theme and locale from the host page by postMessage and tells
// the host what happens; standalone (GET /wizard) it reads the token from
// the URL fragment. Everything the API returns goes into the page as text,
// never as HTML; secrets are write-only and never come back.
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("pb-config").textContent);
  var catalogue = JSON.parse(document.getElementById("pb-messages").textContent);
  var root = document.getElementById("wizard");
  var live = document.getElementById("pb-live");
  var alertBox = document.getElementById("pb-alert");
  var embedded = cfg.mode === "embedded";

  var WIZARD = "query Wizard($id: ID!) { configWizard(instanceID: $id) {" +
    " instance { id name customerID configState }" +
    " pages { key title elements { slotKey label connectionID scope typeKey typeLabel iconURL authKind action" +
    " credential { id status } status connected connectLabel" +
    " fields { key label type required default placeholder description secret options { value label } value isSet }" +
    " existing { id status } errors { field code message } } } } }";
  var SAVE = "mutation Save($in: SaveCredentialInput!) { saveCredential(input: $in) {" +
    " credential { id status } userErrors { field code message } } }";
  var START = "mutation Start($in: StartOAuth2Input!) { startOAuth2(input: $in) { authorizeURL userErrors { field code message } } }";
  var BIND = "mutation Bind($in: BindInstanceConnectionInput!) { bindInstanceConnection(input: $in) {" +
    " userErrors { field code message } } }";
  var DISCONNECT = "mutation Disconnect($id: ID!) { disconnectCredential(id: $id) {" +
    " credential { id status } userErrors { field code message } } }";

  // Session: what the host (or the address) gave us.
  var s = { instanceID: cfg.instance || "", slotKey: "", view: "wizard", token: "", parentOrigin: "", msgs: catalogue.en };
  var wiz = null;        // the last configWizard answer
  var notes = {};        // slotKey -> {kind, text}: the outcome shown on a card
  var forms = {};        // slotKey -> the rendered form's error display
  var configured = null; // the instance's last known configState
  var tokenWaiters = [];
  var calls = {};

  // --- Strings.
  function t(key, params) {
    var text = s.msgs[key] || catalogue.en[key] || key;
    return text.replace(/\{(\w+)\}/g, function (m, k) { return params && params[k] !== undefined ? String(params[k]) : m; });
  }
  function useLocale(locale) {
    var l = String(locale || navigator.language || "en").toLowerCase();
    var pick = catalogue[l] ? l : (catalogue[l.split("-")[0]] ? l.split("-")[0] : "en");
    s.msgs = catalogue[pick];
    document.documentElement.lang = pick;
    document.title = t("title") + " · plugboard";
  }

  // --- Theme: only values that cannot load anything or break out.
  var THEME = {
    brand: { prop: "--pb-brand", re: /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i },
    font: { prop: "--pb-font", re: /^[\w\s,"'-]{1,120}$/ },
    radius: { prop: "--pb-radius", re: /^(?:\d{1,2}(?:\.\d+)?)(?:px|rem|em)$/ },
    text: { prop: "--pb-text", re: /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i },
    background: { prop: "--pb-bg", re: /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i }
  };
  function luminance(hex) {
    var h = hex.slice(1);
    if (h.length === 3) { h = h.replace(/./g, "$&$&"); }
    var c = [0, 2, 4].map(function (i) {
      var v = parseInt(h.substr(i, 2), 16) / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  }
  function applyTheme(theme) {
    var style = document.documentElement.style;
    Object.keys(THEME).forEach(function (k) {
      var v = theme && theme[k];
      if (typeof v === "string" && THEME[k].re.test(v)) { style.setProperty(THEME[k].prop, v); }
    });
    if (theme && typeof theme.brand === "string" && THEME.brand.re.test(theme.brand)) {
      // Button text: white when it reaches 4.5:1 on the brand colour, else near-black.
      var white = 1.05 / (luminance(theme.brand) + 0.05);
      style.setProperty("--pb-on-brand", white >= 4.5 ? "#fff" : "#111");
    }
  }

  // --- The host page.
  function post(msg) {
    if (!embedded || !s.parentOrigin) { return; }
    msg.plugboard = 1;
    window.parent.postMessage(msg, s.parentOrigin);
  }
  function emit(name, payload) { post({ kind: "event", name: name, payload: payload || {} }); }
  function tokenExpiry(tok) {
    var p = tok.split(".");
    if (p.length !== 3) { return 0; }
    try {
      var claims = JSON.parse(atob(p[1].replace(/-/g, "+").replace(/_/g, "/")));
      return typeof claims.exp === "number" ? claims.exp * 1000 : 0;
    } catch (e) { return 0; }
  }
  // freshToken asks the host for a new token (its getToken callback).
  function freshToken() {
    if (!embedded) { return Promise.reject(new Error("no token")); }
    return new Promise(function (resolve, reject) {
      tokenWaiters.push({ resolve: resolve, reject: reject });
      if (tokenWaiters.length === 1) { post({ kind: "token" }); }
      setTimeout(function () { reject(new Error("the host page gave no token")); }, 15000);
    });
  }
  function currentToken() {
    var exp = s.token ? tokenExpiry(s.token) : 0;
    if (s.token && (!exp || exp - Date.now() > 15000)) { return Promise.resolve(s.token); }
    return freshToken();
  }
  window.addEventListener("message", function (ev) {
    var d = ev.data;
    if (ev.origin === location.origin && d && d.type === "plugboard:oauth") { oauthDone(d); return; }
    if (!embedded || ev.source !== window.parent || !d || d.plugboard !== 1) { return; }
    if (s.parentOrigin && ev.origin !== s.parentOrigin) { return; }
    if (d.kind === "init" && !s.parentOrigin) { s.parentOrigin = ev.origin; start(d); }
    else if (d.kind === "token") { gotToken(d.token); }
    else if (d.kind === "call") { call(d); }
    else if (d.kind === "refresh" && wiz) { load(); }
  });
  function gotToken(tok) {
    var waiters = tokenWaiters;
    tokenWaiters = [];
    if (typeof tok === "string" && tok) { s.token = tok; }
    waiters.forEach(function (w) { if (s.token) { w.resolve(s.token); } else { w.reject(new Error("no token")); } });
  }

  // --- GraphQL.
  function request(query, variables, tok) {
    return fetch("/graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Authorization": "Bearer " + tok },
      body: JSON.stringify({ query: query, variables: variables })
    }).then(function (r) { return r.json(); });
  }
  function unauthenticated(r) {
    return r && r.errors && r.errors.length && r.errors[0].extensions && r.errors[0].extensions.code === "UNAUTHENTICATED";
  }
  // gql runs an operation; an expired or refused token is replaced through
  // the host once.
  function gql(query, variables) {
    return currentToken().then(function (tok) {
      return request(query, variables, tok).then(function (r) {
        if (!unauthenticated(r) || !embedded) { return r; }
        s.token = "";
        return freshToken().then(function (tok2) { return request(query, variables, tok2); });
      });
    });
  }
  function firstError(r, fallback) {
    var e = r && r.errors && r.errors[0];
    return { code: (e && e.extensions && e.extensions.code) || "INTERNAL", message: (e && e.message) || fallback };
  }

  // --- DOM helpers.
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { e.textContent = text; }
    return e;
  }
  var seq = 0;
  function uid(prefix) { seq += 1; return prefix + "-" + seq; }
  function announce(text) { live.textContent = ""; setTimeout(function () { live.textContent = text; }, 30); }
  function alarm(text) { alertBox.textContent = ""; setTimeout(function () { alertBox.textContent = text; }, 30); }
  function problem(text, retry) {
    var box = el("div", { "class": "problem", role: "alert" });
    box.appendChild(el("p", {}, text));
    if (retry) {
      var b = box.appendChild(el("button", { type: "button", "class": "secondary" }, t("tryAgain")));
      b.addEventListener("click", load);
    }
    root.replaceChildren(box);
    emit("error", { code: "LOAD_FAILED", message: text });
  }
  function statusLabel(e) {
    if (e.action === "MANAGED_BY_ORG") { return e.status === "ACTIVE" ? t("managed") : t("status." + (e.status || "none")); }
    return t("status." + (e.status || "none"));
  }
  function ready(e) { return e.status === "ACTIVE"; }

  // --- Fields.
  function control(f, id) {
    var c;
    switch (f.type) {
      case "PASSWORD":
        c = el("input", { type: "password", autocomplete: "off", spellcheck: "false" });
        break;
      case "PICKLIST":
        c = el("select", {});
        c.appendChild(el("option", { value: "" }, t("choose")));
        f.options.forEach(function (o) { c.appendChild(el("option", { value: o.value }, o.label || o.value)); });
        c.value = f.value !== null ? f.value : (f["default"] || "");
        break;
      case "BOOLEAN":
        c = el("input", { type: "checkbox" });
        c.checked = (f.value !== null ? f.value : f["default"]) === "true";
        break;
      case "TEXT": case "JSON":
        c = el("textarea", { spellcheck: "false" });
        c.value = f.value || "";
        break;
      case "NUMBER": c = el("input", { type: "number" }); c.value = f.value || ""; break;
      case "URL": c = el("input", { type: "url", spellcheck: "false" }); c.value = f.value || ""; break;
      default: c = el("input", { type: "text", spellcheck: "false" }); c.value = f.value || "";
    }
    if (f.secret && f.isSet) { c.placeholder = "••••••••"; }
    else if (f.placeholder && c.tagName === "INPUT" && f.type !== "BOOLEAN") { c.placeholder = f.placeholder; }
    if (f.required) { c.setAttribute("aria-required", "true"); }
    c.id = id;
    c.name = f.key;
    return c;
  }

  // fieldRow renders one field with its label, help and error line.
  function fieldRow(f) {
    var id = uid("f"), row = el("div", { "class": "field" });
    var c = control(f, id);
    var lab = el("label", { "for": id }, f.label);
    if (f.required) { lab.appendChild(el("span", { "class": "req" }, " (" + t("required") + ")")); }
    var described = [];
    if (f.type === "BOOLEAN") {
      var wrap = el("div", { "class": "check" });
      wrap.appendChild(c);
      wrap.appendChild(lab);
      row.appendChild(wrap);
    } else {
      row.appendChild(lab);
      row.appendChild(c);
    }
    var helpText = f.description || "";
    if (f.secret && f.isSet) { helpText = (helpText ? helpText + " " : "") + t("secretSet"); }
    if (helpText) {
      var help = row.appendChild(el("p", { "class": "help", id: id + "-help" }, helpText));
      described.push(help.id);
    }
    var err = row.appendChild(el("p", { "class": "error", id: id + "-error" }));
    described.push(err.id);
    c.setAttribute("aria-describedby", described.join(" "));
    return { row: row, c: c, err: err, f: f };
  }

  // form renders a slot's fields in a <form> (Enter submits); it returns
  // the values getter and the error display.
  function form(card, e) {
    var fm = el("form", { novalidate: "", "data-slot-form": e.slotKey });
    var rows = {};
    e.fields.forEach(function (f) {
      var r = fieldRow(f);
      rows[f.key] = r;
      fm.appendChild(r.row);
    });
    var general = fm.appendChild(el("p", { "class": "error", id: uid("g") }));
    var actions = fm.appendChild(el("div", { "class": "actions" }));
    card.appendChild(fm);
    function values() {
      var out = [];
      Object.keys(rows).forEach(function (k) {
        var x = rows[k], v = x.f.type === "BOOLEAN" ? (x.c.checked ? "true" : "false") : x.c.value;
        if (x.f.secret && v === "") { return; } // keep the stored secret
        if (!x.f.secret && v === "" && x.f.value === null) { return; }
        out.push({ key: k, value: v });
      });
      return out;
    }
    function showErrors(list) {
      var firstBad = null, messages = [];
      Object.keys(rows).forEach(function (k) { rows[k].err.textContent = ""; rows[k].c.removeAttribute("aria-invalid"); });
      general.textContent = "";
      (list || []).forEach(function (u) {
        var k = u.field && u.field[0] === "values" ? u.field[1] : null;
        var r = k && rows[k];
        var target = r ? r.err : general;
        target.textContent = (target.textContent ? target.textContent + " " : "") + u.message;
        if (r) { r.c.setAttribute("aria-invalid", "true"); firstBad = firstBad || r.c; }
        messages.push(u.message);
      });
      if (messages.length) { alarm(t("errorsIn") + " " + messages.join(" ")); }
      return firstBad;
    }
    return { form: fm, actions: actions, values: values, showErrors: showErrors };
  }

  function busy(btn, text) {
    var old = btn.textContent;
    btn.disabled = true;
    btn.setAttribute("aria-busy", "true");
    btn.textContent = text;
    return function () { btn.disabled = false; btn.removeAttribute("aria-busy"); btn.textContent = old; };
  }

  function saveInput(e, values) {
    var input = { connectionID: e.connectionID, values: values };
    var holder = { customerID: wiz.instance.customerID, instanceID: wiz.instance.id };
    var f = cfg.saveHolder[e.scope];
    if (f) { input[f] = holder[f]; }
    return input;
  }

  // save stores a slot's values; it resolves to the payload, the field
  // errors shown on the slot's form when it has one.
  function save(e, values) {
    return gql(SAVE, { "in": saveInput(e, values) }).then(function (r) {
      var p = r.data && r.data.saveCredential;
      if (!p) { throw firstError(r, t("unreachable")); }
      if (p.userErrors.length) {
        if (forms[e.slotKey]) { forms[e.slotKey].showErrors(p.userErrors); }
        emit("error", { code: (r.errors && firstError(r).code) || "VALIDATION_FAILED", slotKey: e.slotKey, userErrors: p.userErrors });
        return p;
      }
      emit("credential.saved", { instanceID: wiz.instance.id, slotKey: e.slotKey, credentialID: p.credential.id, status: p.credential.status });
      return p;
    });
  }

  // --- Cards.
  function iconOf(e) {
    var box = el("div", { "class": "icon", "aria-hidden": "true" });
    var u = e.iconURL || "";
    if (u.indexOf(location.origin + "/") === 0 || (u[0] === "/" && u[1] !== "/")) {
      box.appendChild(el("img", { src: u, alt: "", width: "28", height: "28" }));
    } else {
      box.textContent = (e.typeLabel || e.label || "?").charAt(0).toUpperCase();
    }
    return box;
  }
  function card(e) {
    var c = el("section", { "class": "card", "data-slot": e.slotKey, "data-state": ready(e) ? "ok" : "todo" });
    var headID = uid("h");
    c.setAttribute("aria-labelledby", headID);
    var head = c.appendChild(el("div", { "class": "head" }));
    head.appendChild(iconOf(e));
    var name = head.appendChild(el("div", { "class": "name" }));
    name.appendChild(el("h2", { id: headID }, e.label));
    name.appendChild(el("p", { "class": "type" }, e.typeLabel));
    head.appendChild(el("span", { "class": "badge", "data-status": e.status || "NONE" }, statusLabel(e)));
    var n = notes[e.slotKey];
    if (n) { c.appendChild(el("p", { "class": n.kind === "ok" ? "ok" : "error", "data-note": n.kind, tabindex: "-1" }, n.text)); }
    return c;
  }

  function renderForm(c, e) {
    var f = form(c, e);
    forms[e.slotKey] = f;
    var btn = f.actions.appendChild(el("button", { type: "submit" }, e.credential ? t("update") : t("save")));
    f.form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var done = busy(btn, t("saving"));
      save(e, f.values()).then(function (p) {
        done();
        if (p.userErrors.length) { var bad = f.showErrors(p.userErrors); if (bad) { bad.focus(); } return; }
        notes[e.slotKey] = { kind: "ok", text: t("saved", { label: e.label }) };
        announce(notes[e.slotKey].text);
        load(e.slotKey);
      }, function (err) { done(); f.showErrors([{ field: [], message: err.message || t("unreachable") }]); emit("error", err); });
    });
    f.showErrors(e.errors);
  }

  function renderExisting(c, e) {
    var id = uid("x");
    c.appendChild(el("label", { "for": id, "class": "label" }, t("useExisting")));
    var sel = c.appendChild(el("select", { id: id }));
    e.existing.forEach(function (x) { sel.appendChild(el("option", { value: x.id }, t("existingOption", { status: t("status." + x.status) }))); });
    var actions = c.appendChild(el("div", { "class": "actions" }));
    var use = actions.appendChild(el("button", { type: "button" }, t("useThis")));
    var err = c.appendChild(el("p", { "class": "error" }));
    use.addEventListener("click", function () {
      var done = busy(use, t("saving"));
      gql(BIND, { "in": { instanceID: wiz.instance.id, slotKey: e.slotKey, credentialID: sel.value } }).then(function (r) {
        done();
        var ue = r.data && r.data.bindInstanceConnection ? r.data.bindInstanceConnection.userErrors : [];
        if (ue.length || r.errors) { err.textContent = ue.length ? ue[0].message : r.errors[0].message; alarm(err.textContent); return; }
        notes[e.slotKey] = { kind: "ok", text: t("saved", { label: e.label }) };
        emit("credential.saved", { instanceID: wiz.instance.id, slotKey: e.slotKey, credentialID: sel.value, status: "ACTIVE" });
        load(e.slotKey);
      });
    });
    if (e.fields.length) { c.appendChild(el("p", { "class": "help" }, t("orNew"))); }
  }

  function renderOAuth(c, e) {
    var f = form(c, e);
    forms[e.slotKey] = f;
    var type = e.typeLabel || e.label;
    var label = e.connected ? t("reconnect") : t("connect", { type: e.label });
    var btn = f.actions.appendChild(el("button", { type: "submit", "data-action": e.connected ? "reconnect" : "connect" }, label));
    f.form.addEventListener("submit", function (ev) { ev.preventDefault(); connect(e, f, btn, type); });
    if (e.connected && e.credential) {
      var off = f.actions.appendChild(el("button", { type: "button", "class": "secondary", "data-action": "disconnect" }, t("disconnect")));
      off.addEventListener("click", function () { disconnect(e, f, off); });
    }
    f.showErrors(e.errors);
  }

  // connect saves the visible fields when needed, then opens the provider
  // in a popup; the callback page posts {type: "plugboard:oauth"} back.
  var pending = null; // the slot whose popup is open
  function connect(e, f, btn, type) {
    var popup = window.open("about:blank", "plugboard-oauth", "popup,width=600,height=720");
    if (!popup) { f.showErrors([{ field: [], message: t("popupBlocked") }]); emit("error", { code: "POPUP_BLOCKED", slotKey: e.slotKey }); return; }
    var done = busy(btn, t("connecting", { type: e.label }));
    var vals = f.values();
    var cred = (!e.credential || vals.length) ? save(e, vals).then(function (p) {
      if (p.userErrors.length) { f.showErrors(p.userErrors); return null; }
      return p.credential.id;
    }) : Promise.resolve(e.credential.id);
    cred.then(function (id) {
      if (!id) { popup.close(); done(); return null; }
      return gql(START, { "in": { credentialID: id, popup: true } }).then(function (r) {
        var p = r.data && r.data.startOAuth2;
        if (!p || !p.authorizeURL) {
          popup.close(); done();
          f.showErrors(p && p.userErrors.length ? p.userErrors : [{ field: [], message: firstError(r, t("unreachable")).message }]);
          return;
        }
        pending = { e: e, done: done, popup: popup, type: type };
        popup.location.href = p.authorizeURL;
        watch(pending);
      });
    }).catch(function (err) { popup.close(); done(); f.showErrors([{ field: [], message: err.message || t("unreachable") }]); });
  }
  // watch resets the button when the customer closes the popup unfinished.
  function watch(p) {
    var timer = setInterval(function () {
      if (pending !== p) { clearInterval(timer); return; }
      if (p.popup.closed) { clearInterval(timer); setTimeout(function () { if (pending === p) { pending = null; p.done(); } }, 800); }
    }, 400);
  }
  function oauthDone(d) {
    var p = pending;
    pending = null;
    if (!p) { load(); return; }
    p.done();
    var e = p.e;
    if (d.status === "ACTIVE" && !d.error) {
      notes[e.slotKey] = { kind: "ok", text: t("connected", { label: e.label }) };
      announce(notes[e.slotKey].text);
      emit("credential.connected", { instanceID: wiz.instance.id, slotKey: e.slotKey, credentialID: d.credentialId, status: d.status });
    } else {
      notes[e.slotKey] = { kind: "error", text: t("notConnected", { type: e.label, error: d.error || d.status || "?" }) };
      alarm(notes[e.slotKey].text);
      emit("error", { code: "OAUTH_FAILED", slotKey: e.slotKey, message: d.error || "" });
    }
    load(e.slotKey);
  }

  function disconnect(e, f, btn) {
    var done = busy(btn, t("disconnecting"));
    gql(DISCONNECT, { id: e.credential.id }).then(function (r) {
      done();
      var p = r.data && r.data.disconnectCredential;
      if (!p || p.userErrors.length) {
        f.showErrors(p && p.userErrors.length ? p.userErrors : [{ field: [], message: firstError(r, t("unreachable")).message }]);
        return;
      }
      notes[e.slotKey] = { kind: "info", text: t("disconnected", { label: e.label }) };
      announce(notes[e.slotKey].text);
      emit("credential.disconnected", { instanceID: wiz.instance.id, slotKey: e.slotKey, credentialID: e.credential.id, status: p.credential ? p.credential.status : "PENDING" });
      load(e.slotKey);
    });
  }

  // --- The page.
  function elements() {
    var out = [];
    wiz.pages.forEach(function (p) { p.elements.forEach(function (e) { out.push(e); }); });
    if (s.slotKey) { out = out.filter(function (e) { return e.slotKey === s.slotKey; }); }
    return out;
  }
  function finish(list) {
    var single = !!s.slotKey;
    var box = el("div", { "class": "finish", role: "status", tabindex: "-1", "data-finish": "" });
    box.appendChild(el("h2", {}, t("finishTitle")));
    box.appendChild(el("p", {}, single ? t("connected", { label: list[0].label }) : t("finishBody", { name: wiz.instance.name })));
    var actions = box.appendChild(el("div", { "class": "actions center" }));
    var b = actions.appendChild(el("button", { type: "button", "data-action": "done" }, t("done")));
    b.addEventListener("click", function () { emit("close", { instanceID: wiz.instance.id, reason: "done" }); });
    return box;
  }
  function render(focusSlot) {
    forms = {};
    var list = elements();
    var done = list.filter(ready).length;
    var nodes = [];
    if (s.slotKey) {
      nodes.push(el("h1", {}, list.length ? t("connect", { type: list[0].label }) : t("title")));
    } else {
      nodes.push(el("h1", {}, wiz.instance.name));
      nodes.push(el("p", { "class": "progress", id: "pb-progress" }, t("progress", { done: done, total: list.length })));
      var bar = el("div", { "class": "bar", role: "progressbar", "aria-labelledby": "pb-progress",
        "aria-valuemin": "0", "aria-valuemax": String(list.length), "aria-valuenow": String(done) });
      bar.appendChild(el("span", {})).style.width = (list.length ? 100 * done / list.length : 0) + "%";
      nodes.push(bar);
    }
    var complete = s.slotKey ? list.length > 0 && ready(list[0]) && !!notes[s.slotKey] : wiz.instance.configState === "CONFIGURED";
    if (complete) { nodes.push(finish(list)); }
    root.replaceChildren.apply(root, nodes);
    list.forEach(function (e) {
      var c = root.appendChild(card(e));
      if (e.action === "MANAGED_BY_ORG") { return; }
      if (e.action === "SELECT_EXISTING") { renderExisting(c, e); if (!e.fields.length) { return; } }
      if (e.action === "OAUTH_CONNECT") { renderOAuth(c, e); } else { renderForm(c, e); }
    });
    var target = focusSlot && root.querySelector('[data-slot="' + focusSlot + '"] [data-note]');
    if (complete && focusSlot) { target = root.querySelector("[data-finish]"); }
    if (target) { target.focus(); }
    resize();
  }

  function load(focusSlot) {
    if (!s.instanceID) { problem(t("noInstance")); return Promise.resolve(); }
    return gql(WIZARD, { id: s.instanceID }).then(function (r) {
      if (!r.data || !r.data.configWizard) {
        var err = firstError(r, t("notFound"));
        problem(err.code === "UNAUTHENTICATED" ? t("noToken") : (err.code === "NOT_FOUND" ? t("notFound") : err.message), err.code !== "UNAUTHENTICATED");
        return;
      }
      var first = wiz === null;
      wiz = r.data.configWizard;
      render(typeof focusSlot === "string" ? focusSlot : "");
      var state = wiz.instance.configState;
      if (first) {
        emit("ready", { instanceID: wiz.instance.id, configured: state === "CONFIGURED",
          connections: elements().map(function (e) { return { slotKey: e.slotKey, status: e.status, action: e.action }; }) });
      } else if (state === "CONFIGURED" && configured !== "CONFIGURED") {
        emit("instance.configured", { instanceID: wiz.instance.id });
      }
      configured = state;
    }, function (err) { problem(err && err.message === "no token" ? t("noToken") : t("unreachable"), true); });
  }

  // --- Calls from the host page (plugboard.js).
  function call(d) {
    var reply = function (result, error) { post({ kind: "reply", id: d.id, result: result, error: error }); };
    if (d.method !== "setConnectionValues") { reply(null, { code: "BAD_REQUEST", message: "unknown method" }); return; }
    setValues(d.args || {}).then(function (res) { reply(res); }, function (err) {
      reply(null, { code: err.code || "INTERNAL", message: err.message || String(err) });
    });
  }
  function setValues(a) {
    var vals = a.values;
    if (vals && !Array.isArray(vals)) {
      vals = Object.keys(vals).map(function (k) { return { key: k, value: vals[k] === null ? null : String(vals[k]) }; });
    }
    var loaded = wiz ? Promise.resolve() : load();
    return loaded.then(function () {
      if (!wiz) { throw { code: "NOT_FOUND", message: t("notFound") }; }
      var e = null;
      elements().forEach(function (x) { if (x.slotKey === a.slotKey) { e = x; } });
      if (!e) { return { credential: null, userErrors: [{ field: ["slotKey"], code: "NOT_FOUND", message: "The instance has no connection " + a.slotKey + "." }] }; }
      if (e.action === "MANAGED_BY_ORG") {
        return { credential: null, userErrors: [{ field: ["slotKey"], code: "FORBIDDEN", message: "The organization sets the values of " + e.label + "." }] };
      }
      return save(e, vals || []).then(function (p) {
        if (!p.userErrors.length) { notes[e.slotKey] = { kind: "ok", text: t("saved", { label: e.label }) }; load(); }
        return { credential: p.credential, userErrors: p.userErrors };
      });
    });
  }

  // --- Size: the host sizes the iframe to the content.
  function resize() { post({ kind: "resize", height: Math.ceil(document.documentElement.scrollHeight) }); }
  if (window.ResizeObserver) { new ResizeObserver(resize).observe(document.body); }

  function start(d) {
    s.instanceID = typeof d.instanceID === "string" ? d.instanceID : "";
    s.slotKey = typeof d.slotKey === "string" ? d.slotKey : "";
    s.token = typeof d.token === "string" ? d.token : "";
    useLocale(d.locale);
    applyTheme(d.theme);
    load();
  }

  useLocale(cfg.locale);
  if (embedded) {
    // Tell the host the frame is listening; it answers with init.
    window.parent.postMessage({ plugboard: 1, kind: "hello" }, "*");
  } else {
    var key = "plugboard:token:" + s.instanceID;
    var m = /(?:^|&)token=([^&]*)/.exec(location.hash.slice(1));
    if (m) {
      s.token = decodeURIComponent(m[1]);
      try { sessionStorage.setItem(key, s.token); } catch (e) { /* storage off: this load only */ }
      history.replaceState(null, "", location.pathname + location.search);
    } else {
      try { s.token = sessionStorage.getItem(key) || ""; } catch (e) { s.token = ""; }
    }
    if (!s.token) { problem(t("noToken")); } else { load(); }
  }
})();
