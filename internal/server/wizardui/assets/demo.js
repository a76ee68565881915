(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("instance")) { $("instance").value = hash.get("instance"); }
  if (hash.get("token")) { $("token").value = hash.get("token"); }
  history.replaceState(null, "", location.pathname);
  var handle = null;
  function log(name, payload) {
    $("log").textContent = new Date().toLocaleTimeString() + " " + name + " " + JSON.stringify(payload) + "\n" + $("log").textContent;
  }
  function show() {
    if (handle) { handle.unmount(); }
    if (!$("instance").value || !$("token").value) { return; }
    handle = Plugboard.mount($("connections"), {
      instanceID: $("instance").value,
      getToken: function () { return $("token").value; },
      theme: { brand: $("brand").value, radius: "10px" },
      locale: $("locale").value,
      onEvent: log
    });
  }
  $("settings").addEventListener("submit", function (ev) { ev.preventDefault(); show(); });
  show();
})();
