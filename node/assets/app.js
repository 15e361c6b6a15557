// The Qyvol dashboard's own behaviour, beside htmx: error notices and the live log view.
// Loaded as a file (the page's Content-Security-Policy allows no inline script). Guest text
// is only ever inserted with textContent, never as markup.
(function () {
  "use strict";

  function notice(text) {
    var n = document.getElementById("notice");
    if (n) n.textContent = text;
  }

  // A failed action (409, 500, ...) says why in the page's notice; a form's 422 answer is
  // swapped into the form by htmx itself.
  document.addEventListener("htmx:responseError", function (e) {
    var xhr = e.detail.xhr;
    if (xhr.status !== 422) notice(xhr.responseText || xhr.statusText);
  });
  document.addEventListener("htmx:sendError", function () {
    notice(document.documentElement.lang === "en" ? "The node does not answer." : "El nodo no responde.");
  });
  document.addEventListener("htmx:beforeRequest", function (e) {
    if (e.detail.requestConfig && e.detail.requestConfig.verb !== "get") notice("");
  });

  // The live log: server-sent events, with follow, pause, search and a stream filter.
  function logView() {
    var box = document.getElementById("log");
    if (!box) return;
    var follow = document.getElementById("log-follow");
    var pause = document.getElementById("log-pause");
    var search = document.getElementById("log-search");
    var stream = document.getElementById("log-stream");
    var held = document.getElementById("log-held");
    var MAX = 5000;
    var paused = false;
    var queue = [];

    function shows(row) {
      var q = search.value.toLowerCase();
      var s = stream.value;
      return (!s || row.dataset.stream === s) &&
        (!q || row.lastChild.textContent.toLowerCase().indexOf(q) !== -1);
    }
    function add(line) {
      var row = document.createElement("div");
      row.className = "line " + (line.stream === "stderr" ? "err" : line.stream === "stdout" ? "out" : "node");
      row.dataset.stream = line.stream;
      var time = document.createElement("time");
      time.dateTime = line.time;
      time.textContent = String(line.time).slice(11, 23);
      var name = document.createElement("span");
      name.className = "stream";
      name.textContent = line.stream;
      var text = document.createElement("span");
      text.className = "text";
      text.textContent = line.text;
      row.append(time, " ", name, " ", text);
      row.hidden = !shows(row);
      box.append(row);
      while (box.childElementCount > MAX) box.firstElementChild.remove();
    }
    function bottom() {
      if (follow.checked) box.scrollTop = box.scrollHeight;
    }
    var source = new EventSource(box.dataset.src);
    source.onmessage = function (ev) {
      var line;
      try { line = JSON.parse(ev.data); } catch (_) { return; }
      if (paused) {
        queue.push(line);
        held.textContent = queue.length + " " + held.dataset.text;
      } else {
        add(line);
        bottom();
      }
    };
    pause.addEventListener("click", function () {
      paused = !paused;
      pause.setAttribute("aria-pressed", String(paused));
      pause.textContent = paused ? pause.dataset.resume : pause.dataset.pause;
      if (!paused) {
        queue.forEach(add);
        queue = [];
        held.textContent = "";
        bottom();
      }
    });
    function refilter() {
      for (var i = 0; i < box.children.length; i++) box.children[i].hidden = !shows(box.children[i]);
    }
    search.addEventListener("input", refilter);
    stream.addEventListener("change", refilter);
    follow.addEventListener("change", bottom);
    window.addEventListener("pagehide", function () { source.close(); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", logView);
  } else {
    logView();
  }
})();
