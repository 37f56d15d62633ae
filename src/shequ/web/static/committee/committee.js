/* 居委微平台: small behaviours of the committee's pages (no inline scripts: the CSP forbids them). */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // A changed committee or group reloads the page with it.
  document.addEventListener("change", function (evt) {
    var el = evt.target;
    if (el.matches && el.matches("select[data-cm-autosubmit]") && el.form) {
      el.form.submit();
    }
  });

  // Alarm buttons post to the alarm console's own routes, then the to-do list reloads, so the
  // committee worker stays on their page (without script the console's page opens instead).
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (!form.matches || !form.matches("form[data-cm-fetch]") || !window.fetch) { return; }
    evt.preventDefault();
    var button = form.querySelector("button");
    if (button) { button.disabled = true; }
    var box = form.parentNode.querySelector(".cm-fetch-error");
    window.fetch(form.action, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": csrfToken(), "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(new FormData(form)).toString()
    }).then(function (response) {
      if (response.ok) { window.location.reload(); return; }
      return response.text().then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var alert = doc.querySelector(".alert.error");
        if (box) {
          box.textContent = alert ? alert.textContent : String(response.status);
          box.hidden = false;
        }
        if (button) { button.disabled = false; }
      });
    }).catch(function () {
      if (button) { button.disabled = false; }
    });
  });
})();
