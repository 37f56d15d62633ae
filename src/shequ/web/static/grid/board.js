/* 网格中台 board: the alarm console reloads itself every 10 s (htmx); hold the reload while the
   dispatcher is using a form in it, so that a half-chosen case class is not wiped away. */
(function () {
  "use strict";

  var submitting = false;

  function busy(box) {
    if (submitting) { return true; }
    var active = document.activeElement;
    if (active && box.contains(active) && active.matches("input, select, textarea")) { return true; }
    return box.querySelector("details[open]") !== null;
  }

  document.addEventListener("submit", function () { submitting = true; });
  window.addEventListener("pageshow", function () { submitting = false; });

  document.addEventListener("htmx:beforeRequest", function (evt) {
    var elt = evt.detail.elt;
    if (elt && elt.id === "alarm-console" && busy(elt)) { evt.preventDefault(); }
  });
})();
