// A WASI 0.2 HTTP handler in JavaScript (componentize-js, StarlingMonkey): the fetch-event
// style, answering each request with its method and path, and a small computation, as JSON.
addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  let sum = 0;
  for (let i = 0; i < 100; i++) sum += i * i;
  event.respondWith(
    new Response(JSON.stringify({ hello: "from JavaScript", path: url.pathname, sum }) + "\n", {
      headers: { "content-type": "application/json" },
    }),
  );
});
