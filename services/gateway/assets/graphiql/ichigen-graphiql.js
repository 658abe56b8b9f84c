// Ichigen's GraphiQL page (served on GET /graphql, see services/gateway/src/graphql/graphiql.rs):
// queries and mutations are POSTed to the page's own path, subscriptions run over graphql-ws
// on the same path. Headers typed into GraphiQL's Headers tab, e.g.
// {"Authorization": "Bearer <token from `ichigen token`>"}, go with every request and, for a
// subscription, in its connection_init payload (where the server reads the token).
(function () {
  "use strict";
  var endpoint = new URL(window.location.pathname, window.location.origin);
  var socket = new URL(endpoint.toString());
  socket.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";
  var fetcher = GraphiQL.createFetcher({
    url: endpoint.toString(),
    subscriptionUrl: socket.toString(),
  });
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
    })
  );
})();
