/* shequ pages: small behaviours, no inline scripts (the CSP forbids them). */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Every htmx request carries the CSRF token (double submit: cookie + header).
  document.addEventListener("htmx:configRequest", function (evt) {
    evt.detail.headers["X-CSRF-Token"] = csrfToken();
    // a list URL keeps only the filters in use, so a shared link stays short
    if (evt.detail.verb === "get" && evt.detail.elt && evt.detail.elt.id === "filters") {
      var params = evt.detail.parameters, empty = [];
      Object.keys(params).forEach(function (k) { if (params[k] === "") { empty.push(k); } });
      empty.forEach(function (k) { delete params[k]; });
    }
  });

  // Filters: a changed select re-runs the list; a new place picker selection too.
  document.addEventListener("change", function (evt) {
    var el = evt.target;
    if (el.matches && el.matches("[data-autosubmit]") && el.form && window.htmx) {
      window.htmx.trigger(el.form, "submit");
    }
  });
  document.addEventListener("htmx:afterSwap", function (evt) {
    if (evt.detail.target && evt.detail.target.id === "place-picker") {
      var form = document.getElementById("filters");
      if (form && window.htmx) { window.htmx.trigger(form, "submit"); }
    }
  });

  // Unmask: the button opens the purpose form; cancel closes it.
  document.addEventListener("click", function (evt) {
    var open = evt.target.closest && evt.target.closest("[data-unmask-open]");
    if (open) {
      var box = document.getElementById(open.getAttribute("data-unmask-open"));
      if (box) { box.hidden = false; var input = box.querySelector("input[name=purpose]"); if (input) input.focus(); }
      open.hidden = true;
    }
    var cancel = evt.target.closest && evt.target.closest("[data-unmask-cancel]");
    if (cancel) {
      var form = cancel.closest("form");
      if (form) { form.hidden = true; }
      var btn = document.querySelector('[data-unmask-open="' + (form && form.id) + '"]');
      if (btn) { btn.hidden = false; }
    }
  });

  // Import: the template link follows the chosen kind.
  document.addEventListener("change", function (evt) {
    if (evt.target.id === "import-kind") {
      var link = document.getElementById("template-link");
      if (link) { link.href = link.getAttribute("data-template-base") + evt.target.value + ".xlsx"; }
    }
  });
})();
