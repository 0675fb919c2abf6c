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
    // The button pressed may ask its own question (a form with "Check" and "Import" buttons).
    var button = event.submitter;
    var question = (button && button.getAttribute && button.getAttribute("data-confirm")) ||
      (form.getAttribute && form.getAttribute("data-confirm"));
    if (question && !window.confirm(question)) event.preventDefault();
  }, true);

  // A form sent once only (a second click must not queue the same bulk send twice): <form data-submit-once>.
  // Runs after the data-confirm check above, so a cancelled confirmation leaves the button usable.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || !form.hasAttribute || !form.hasAttribute("data-submit-once")) return;
    form.querySelectorAll("button[type=submit]").forEach(function (button) { button.disabled = true; });
  });

  // Print buttons: <button data-print>. "Cancel" links that go back where the user came from: <a data-back>
  // (the href is where they go when there is no history, or without script).
  document.addEventListener("click", function (event) {
    var target = event.target.closest && event.target.closest("[data-print]");
    if (target) { event.preventDefault(); window.print(); return; }
    var back = event.target.closest && event.target.closest("a[data-back]");
    if (back && window.history.length > 1) { event.preventDefault(); window.history.back(); }
  });

  // Choices that apply at once (the language, the operator switch): <select data-autosubmit>.
  // No inline onchange="" handlers anywhere: the Content-Security-Policy forbids them.
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.hasAttribute && target.hasAttribute("data-autosubmit") && target.form) target.form.submit();
  });

  // A count in the page's language: Bengali digits on a Bangla page, as the server writes them.
  function localDigits(number) {
    var text = String(number);
    if ((document.documentElement.lang || "").indexOf("bn") !== 0) return text;
    return text.replace(/[0-9]/g, function (digit) { return "০১২৩৪৫৬৭৮৯".charAt(Number(digit)); });
  }

  // "Select all on this page" for bulk actions, and a live count of the ticked rows.
  function syncBulk() {
    var boxes = document.querySelectorAll("input[name=subscribers]");
    var ticked = 0;
    boxes.forEach(function (box) { if (box.checked) ticked += 1; });
    var counter = document.getElementById("bulk-count");
    if (counter) counter.textContent = localDigits(ticked);
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

  // Text typed before the deferred scripts ran (a slow link, a quick typist) fired its input events
  // before htmx listened, and htmx then took the typed text for the field's unchanged value. A live
  // search form that also searches on "submit" is sent once more through htmx (a synthetic submit
  // event never submits a form natively). Registered after htmx's own DOMContentLoaded handler, as
  // this file loads after htmx, so htmx has processed the page by then.
  function replayEarlyInput() {
    document.querySelectorAll("form[hx-trigger]").forEach(function (form) {
      if (!/\bsubmit\b/.test(form.getAttribute("hx-trigger"))) return;
      var typed = Array.prototype.some.call(form.querySelectorAll("input[type=search], input[type=text]"), function (input) {
        return input.value !== input.defaultValue;
      });
      if (typed) form.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true }));
    });
  }
  if (document.readyState === "complete") replayEarlyInput();
  else document.addEventListener("DOMContentLoaded", replayEarlyInput);

  ready(function () {
    syncBulk();
    var kind = document.getElementById("bulk-kind");
    if (kind) showBulkExtras(kind.value);
    var autofocus = document.querySelector("[data-autofocus]");
    if (autofocus) autofocus.focus();
  });
})();
