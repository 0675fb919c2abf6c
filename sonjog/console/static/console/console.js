// Sonjog console: the few behaviours htmx does not cover. No framework, no build step.
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  // Forms that do something hard to undo ask first: <form data-confirm="...">.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  }, true);

  // Print buttons: <button data-print>.
  document.addEventListener("click", function (event) {
    var target = event.target.closest && event.target.closest("[data-print]");
    if (target) { event.preventDefault(); window.print(); }
  });

  // "Select all on this page" for bulk actions, and a live count of the ticked rows.
  function syncBulk() {
    var boxes = document.querySelectorAll("input[name=subscribers]");
    var ticked = 0;
    boxes.forEach(function (box) { if (box.checked) ticked += 1; });
    var counter = document.getElementById("bulk-count");
    if (counter) counter.textContent = String(ticked);
  }
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "select-all") {
      document.querySelectorAll("input[name=subscribers]").forEach(function (box) { box.checked = target.checked; });
    }
    if (target.id === "select-all" || target.name === "subscribers") syncBulk();
    if (target.id === "bulk-kind") showBulkExtras(target.value);
  });
  function showBulkExtras(kind) {
    document.querySelectorAll("[data-bulk-for]").forEach(function (el) {
      el.hidden = el.getAttribute("data-bulk-for") !== kind;
    });
  }

  // Keep the address bar in step with htmx-driven searches so a reload or a shared link shows the same list.
  document.addEventListener("htmx:afterRequest", function (event) {
    var source = event.detail && event.detail.elt;
    if (source && source.id === "subscriber-filters" && event.detail.successful) {
      var query = new URLSearchParams(new FormData(source)).toString();
      history.replaceState(null, "", window.location.pathname + (query ? "?" + query : ""));
      var hidden = document.getElementById("bulk-filters");
      if (hidden) hidden.value = query;
    }
  });

  ready(function () {
    syncBulk();
    var kind = document.getElementById("bulk-kind");
    if (kind) showBulkExtras(kind.value);
    var autofocus = document.querySelector("[data-autofocus]");
    if (autofocus) autofocus.focus();
  });
})();
