/* shequ live notifications: listens to /notifications/stream (server-sent events) while a user
   is signed in; keeps the [data-live-count] badge in the top bar up to date and shows a toast
   for each new message. No inline script or style sheet needed (the CSP forbids them). */
(function () {
  "use strict";

  var badge = document.querySelector("[data-live-count]");
  if (!badge || !window.EventSource) { return; }

  function setCount(n) {
    var count = badge.querySelector(".live-count");
    if (!count) {
      count = document.createElement("span");
      count.className = "live-count";
      count.setAttribute("aria-live", "polite");
      badge.appendChild(count);
    }
    badge.setAttribute("data-count", String(n));
    count.textContent = n > 0 ? " " + (n > 99 ? "99+" : String(n)) : "";
    count.hidden = !(n > 0);
  }

  function toastBox() {
    var box = document.getElementById("live-toasts");
    if (!box) {
      box = document.createElement("div");
      box.id = "live-toasts";
      box.setAttribute("role", "status");
      box.style.position = "fixed";
      box.style.right = "1rem";
      box.style.bottom = "1rem";
      box.style.zIndex = "1000";
      box.style.maxWidth = "22rem";
      document.body.appendChild(box);
    }
    return box;
  }

  function toast(n) {
    var el = document.createElement(n.link ? "a" : "div");
    el.className = "toast toast-" + (n.kind || "notice");
    if (n.link) { el.href = n.link; }
    el.style.display = "block";
    el.style.marginTop = "0.5rem";
    el.style.padding = "0.75rem 1rem";
    el.style.background = n.severity === "CRITICAL" ? "#8b1a1a" : "#1f2d3d";
    el.style.color = "#fff";
    el.style.borderRadius = "6px";
    el.style.boxShadow = "0 2px 8px rgba(0,0,0,.25)";
    el.style.textDecoration = "none";
    var title = document.createElement("strong");
    title.textContent = n.title || "";
    el.appendChild(title);
    if (n.body) {
      var body = document.createElement("div");
      body.textContent = n.body;
      el.appendChild(body);
    }
    toastBox().appendChild(el);
    window.setTimeout(function () { if (el.parentNode) { el.parentNode.removeChild(el); } }, 8000);
  }

  var source = new EventSource("/notifications/stream");
  source.addEventListener("unread", function (evt) {
    try { setCount(JSON.parse(evt.data).unread || 0); } catch (e) { /* a broken frame: skip */ }
  });
  source.addEventListener("notification", function (evt) {
    var n;
    try { n = JSON.parse(evt.data); } catch (e) { return; }
    if (typeof n.unread === "number" && n.unread >= 0) { setCount(n.unread); }
    toast(n);
  });
  // the server closes streams on deploys; EventSource reconnects by itself with Last-Event-ID
  window.addEventListener("pagehide", function () { source.close(); });
})();
