/* Rules and alarm console: the JSON editor's format button and the console's polling. */
(function () {
  "use strict";

  // The rule editor: "Format" pretty-prints the JSON, or says where it is broken.
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest("[data-json-format]");
    if (!button || !button.form) { return; }
    var editor = button.form.querySelector("[data-json-editor]");
    if (!editor) { return; }
    try {
      editor.value = JSON.stringify(JSON.parse(editor.value), null, 2);
      editor.setCustomValidity("");
    } catch (err) {
      editor.setCustomValidity(String(err.message || err));
      editor.reportValidity();
    }
  });
  document.addEventListener("input", function (evt) {
    if (evt.target.matches && evt.target.matches("[data-json-editor]")) { evt.target.setCustomValidity(""); }
  });

  function busy(box) {
    // someone is typing a comment or choosing a case class in the table: do not redraw it
    var active = document.activeElement;
    if (active && box.contains(active) && active.matches("input, select, textarea")) { return true; }
    return box.querySelector("details[open]") !== null;
  }

  // The console polls its table (hx-trigger="every 10s") with the filters now in the address bar.
  document.addEventListener("htmx:configRequest", function (evt) {
    var elt = evt.detail.elt;
    if (elt && elt.hasAttribute && elt.hasAttribute("data-poll")) {
      evt.detail.path = window.location.pathname + window.location.search;
    }
  });
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var elt = evt.detail.elt;
    if (elt && elt.hasAttribute && elt.hasAttribute("data-poll") && busy(elt)) { evt.preventDefault(); }
  });
})();
