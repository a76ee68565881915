// plugboard-graphiql.js starts GraphiQL on plugboard's /graphql page. It is
// an external file, not an inline script, so the page's Content-Security-Policy
// can allow scripts from 'self' only. Its settings come from data-* attributes
// of #graphiql:
//   data-endpoint          the GraphQL endpoint path, e.g. /graphql
//   data-headers           JSON text put into the headers editor
//   data-headers-fixed     "true": data-headers wins over what the browser
//                          stored (the local mode's token); otherwise it is
//                          only the default for a first visit
//   data-token-hint        the placeholder Authorization value; a request
//                          is sent without it, so the schema loads (and the
//                          docs work) before a token is filled in
(function () {
  "use strict";

  // GraphiQL's dialogs add a <style> element marked with
  // window.__webpack_nonce__ when set: hand them this script's nonce, the
  // one the page's CSP allows for styles.
  window.__webpack_nonce__ = document.currentScript.nonce;

  var root = document.getElementById("graphiql");
  var endpoint = root.getAttribute("data-endpoint") || "/graphql";
  var headers = root.getAttribute("data-headers") || "";
  var headersFixed = root.getAttribute("data-headers-fixed") === "true";
  var tokenHint = root.getAttribute("data-token-hint");

  var url = location.protocol + "//" + location.host + endpoint;
  var wsProto = location.protocol === "https:" ? "wss:" : "ws:";
  var subscriptionUrl = wsProto + "//" + location.host + endpoint;

  // Browsers cannot set headers on a websocket, so a subscription carries
  // the headers editor's headers (the token) in its connection_init payload.
  // One fetcher per set of headers: a changed token opens a new websocket.
  var fetchers = {};
  function fetcher(params, opts) {
    var h = Object.assign({}, opts && opts.headers);
    if (tokenHint && h.Authorization === tokenHint) {
      delete h.Authorization;
    }
    opts = Object.assign({}, opts, { headers: h });
    var key = JSON.stringify(h);
    if (!fetchers[key]) {
      fetchers[key] = GraphiQL.createFetcher({
        url: url,
        subscriptionUrl: subscriptionUrl,
        wsConnectionParams: h,
      });
    }
    return fetchers[key](params, opts);
  }

  var props = {
    fetcher: fetcher,
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: true,
    plugins: [GraphiQLPluginExplorer.explorerPlugin()],
    inputValueDeprecation: true,
  };
  if (headers) {
    if (headersFixed) {
      props.headers = headers;
    } else {
      props.defaultHeaders = headers;
    }
  }

  ReactDOM.createRoot(root).render(React.createElement(GraphiQL, props));
})();
