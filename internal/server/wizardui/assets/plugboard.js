/*! plugboard embed v1: the connections wizard in an iframe on plugboard's origin. */
(function (window, document) {
  "use strict";
  if (window.Plugboard && window.Plugboard.version) { return; }
  var script = document.currentScript;
  var ORIGIN = new URL(script ? script.src : location.href).origin;
  var FRAME = ORIGIN + "/embed/v1/frame";
  var defaults = {};
  var frames = [];
  var nextCall = 0;

  function assign(a, b) {
    var out = {};
    [a, b].forEach(function (o) { Object.keys(o || {}).forEach(function (k) { out[k] = o[k]; }); });
    return out;
  }
  // token resolves to a token: the host's getToken() (called on every
  // request from the frame, so it may mint a fresh one), else opts.token.
  function token(opts, fresh) {
    if (opts.token && !fresh && !opts.tokenUsed) { opts.tokenUsed = true; return Promise.resolve(opts.token); }
    if (typeof opts.getToken === "function") { return Promise.resolve().then(opts.getToken); }
    return Promise.resolve(opts.token || "");
  }

  function makeFrame(opts, kind) {
    var f = { opts: opts, kind: kind, handlers: {}, calls: {}, ready: false, queue: [] };
    var iframe = document.createElement("iframe");
    iframe.src = FRAME;
    iframe.title = opts.title || "Connections";
    iframe.setAttribute("referrerpolicy", "no-referrer");
    iframe.style.border = "0";
    iframe.style.width = "100%";
    iframe.style.height = kind === "headless" ? "0" : (opts.height || "320px");
    iframe.style.display = kind === "headless" ? "none" : "block";
    if (kind === "headless") { iframe.setAttribute("aria-hidden", "true"); iframe.tabIndex = -1; }
    f.iframe = iframe;
    frames.push(f);
    return f;
  }
  function send(f, msg) {
    msg.plugboard = 1;
    if (f.iframe.contentWindow) { f.iframe.contentWindow.postMessage(msg, ORIGIN); }
  }
  function dispatch(f, name, payload) {
    (f.handlers[name] || []).concat(f.handlers["*"] || []).forEach(function (fn) {
      try { fn(payload, name); } catch (e) { setTimeout(function () { throw e; }); }
    });
    if (typeof f.opts.onEvent === "function") { f.opts.onEvent(name, payload); }
    var on = f.opts.on && f.opts.on[name];
    if (typeof on === "function") { on(payload); }
    if (f.element) { f.element.dispatchEvent(new CustomEvent("plugboard:" + name, { detail: payload })); }
  }
  function settleCalls(f, err) {
    Object.keys(f.calls).forEach(function (id) { f.calls[id].reject(err); delete f.calls[id]; });
  }

  function onMessage(f, d) {
    switch (d.kind) {
      case "hello": // a (re)loaded frame: hand it its session
        f.ready = false;
        token(f.opts, false).then(function (t) {
          send(f, { kind: "init", token: t, instanceID: String(f.opts.instanceID || ""), slotKey: f.opts.slotKey || "",
            theme: f.opts.theme || {}, locale: f.opts.locale || "" });
        });
        break;
      case "token":
        token(f.opts, true).then(function (t) { send(f, { kind: "token", token: t || "" }); },
          function () { send(f, { kind: "token", token: "" }); });
        break;
      case "resize":
        if (f.kind !== "headless" && typeof d.height === "number") { f.iframe.style.height = Math.max(120, d.height) + "px"; }
        break;
      case "reply": {
        var c = f.calls[d.id];
        if (!c) { return; }
        delete f.calls[d.id];
        if (d.error) { var e = new Error(d.error.message); e.code = d.error.code; c.reject(e); } else { c.resolve(d.result); }
        break;
      }
      case "event":
        if (d.name === "ready") { f.ready = true; f.queue.splice(0).forEach(function (q) { q(); }); }
        if (d.name === "error" && d.payload && d.payload.code === "LOAD_FAILED" && !f.ready) {
          var err = new Error(d.payload.message); err.code = "LOAD_FAILED"; settleCalls(f, err);
          f.queue = [];
        }
        if (/^credential\./.test(d.name)) { refreshOthers(f); }
        dispatch(f, d.name, d.payload || {});
        break;
    }
  }
  // refreshOthers tells the other frames of f's instance that a
  // connection changed, so every view of it stays current.
  function refreshOthers(f) {
    frames.forEach(function (g) {
      if (g !== f && g.ready && String(g.opts.instanceID) === String(f.opts.instanceID)) { send(g, { kind: "refresh" }); }
    });
  }
  window.addEventListener("message", function (ev) {
    if (ev.origin !== ORIGIN || !ev.data || ev.data.plugboard !== 1) { return; }
    frames.forEach(function (f) { if (ev.source === f.iframe.contentWindow) { onMessage(f, ev.data); } });
  });

  function rpc(f, method, args) {
    return new Promise(function (resolve, reject) {
      nextCall += 1;
      var id = "c" + nextCall;
      f.calls[id] = { resolve: resolve, reject: reject };
      var go = function () { send(f, { kind: "call", id: id, method: method, args: args }); };
      if (f.ready) { go(); } else { f.queue.push(go); }
    });
  }
  function handle(f) {
    return {
      frame: f.iframe,
      on: function (name, fn) { (f.handlers[name] = f.handlers[name] || []).push(fn); return this; },
      off: function (name, fn) { f.handlers[name] = (f.handlers[name] || []).filter(function (g) { return g !== fn; }); return this; },
      setConnectionValues: function (slotKey, values) {
        return rpc(f, "setConnectionValues", { instanceID: String(f.opts.instanceID), slotKey: slotKey, values: values });
      },
      unmount: function () {
        settleCalls(f, new Error("unmounted"));
        if (f.iframe.parentNode) { f.iframe.parentNode.removeChild(f.iframe); }
        frames = frames.filter(function (g) { return g !== f; });
      }
    };
  }

  // mount renders the wizard of opts.instanceID inside element.
  function mount(element, opts) {
    if (typeof element === "string") { element = document.querySelector(element); }
    if (!element) { throw new Error("Plugboard.mount: no element"); }
    var f = makeFrame(assign(defaults, opts), "wizard");
    f.element = element;
    element.replaceChildren(f.iframe);
    return handle(f);
  }

  // connect opens one connection's Connect flow in a dialog; it resolves
  // when the dialog closes, with whether the connection was made.
  function connect(opts) {
    var o = assign(defaults, opts);
    if (!o.slotKey) { return Promise.reject(new Error("Plugboard.connect: slotKey is required")); }
    var back = document.createElement("div");
    back.style.cssText = "position:fixed;inset:0;background:rgba(17,24,39,.55);display:flex;align-items:center;justify-content:center;z-index:2147483000;padding:16px";
    var box = document.createElement("div");
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-modal", "true");
    box.setAttribute("aria-label", o.title || "Connect");
    box.style.cssText = "background:#fff;border-radius:12px;width:min(480px,100%);max-height:90vh;overflow:auto;position:relative;box-shadow:0 10px 40px rgba(0,0,0,.3)";
    var close = document.createElement("button");
    close.type = "button";
    close.textContent = "\u00d7";
    close.setAttribute("aria-label", "Close");
    close.style.cssText = "position:absolute;top:6px;right:8px;border:0;background:transparent;font-size:24px;line-height:1;cursor:pointer;color:#374151;padding:4px 8px";
    var f = makeFrame(o, "connect");
    f.element = box;
    box.appendChild(close);
    box.appendChild(f.iframe);
    back.appendChild(box);
    document.body.appendChild(back);
    var h = handle(f);
    var opener = document.activeElement;
    return new Promise(function (resolve) {
      var result = { connected: false, credentialID: null };
      var finish = function () {
        document.removeEventListener("keydown", esc);
        h.unmount();
        if (back.parentNode) { back.parentNode.removeChild(back); }
        if (opener && opener.focus) { opener.focus(); }
        resolve(result);
      };
      var esc = function (ev) { if (ev.key === "Escape") { dispatch(f, "close", { reason: "dismissed" }); finish(); } };
      document.addEventListener("keydown", esc);
      close.addEventListener("click", function () { dispatch(f, "close", { reason: "dismissed" }); finish(); });
      h.on("credential.connected", function (p) { result.connected = true; result.credentialID = p.credentialID; });
      h.on("close", function () { finish(); });
      f.iframe.addEventListener("load", function () { f.iframe.focus(); });
    });
  }

  // setConnectionValues sets a slot's values from the host page, through
  // the instance's mounted wizard or a hidden frame.
  function setConnectionValues(instanceID, slotKey, values, opts) {
    var f = null;
    frames.forEach(function (g) { if (String(g.opts.instanceID) === String(instanceID) && g.kind !== "connect") { f = f || g; } });
    if (!f) {
      f = makeFrame(assign(defaults, assign(opts, { instanceID: instanceID })), "headless");
      document.body.appendChild(f.iframe);
    }
    return handle(f).setConnectionValues(slotKey, values);
  }

  window.Plugboard = {
    version: "1",
    origin: ORIGIN,
    configure: function (opts) { defaults = assign(defaults, opts); },
    mount: mount,
    connect: connect,
    setConnectionValues: setConnectionValues
  };
})(window, document);
