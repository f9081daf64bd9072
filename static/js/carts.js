// The carts console: copy buttons, ticking carts for a bulk send, the cart drawer and the bulk dialog.
// No inline handlers (the CSP forbids them): everything listens here, by delegation, so it keeps working on
// regions htmx swaps in.
(function () {
  "use strict";

  // --- copy a recovery link -----------------------------------------------------------------------------
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain http (the demo on another machine): the clipboard API needs a secure context.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }

  function flash(button, text) {
    var label = button.firstChild;
    if (!button.dataset.label) { button.dataset.label = label.textContent; }
    label.textContent = text;
    button.classList.add("copied");
    window.clearTimeout(button._copyTimer);
    button._copyTimer = window.setTimeout(function () {
      label.textContent = button.dataset.label;
      button.classList.remove("copied");
    }, 2000);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    event.preventDefault();
    copyText(button.getAttribute("data-copy")).then(
      function () { flash(button, "Copied"); },
      function () { flash(button, "Copy failed: select the link"); }
    );
  });

  // --- ticking carts --------------------------------------------------------------------------------------
  function ticks() { return Array.prototype.slice.call(document.querySelectorAll("input[data-tick]")); }

  function updateTicked() {
    var boxes = ticks();
    var ticked = boxes.filter(function (box) { return box.checked; }).length;
    document.querySelectorAll("[data-ticked-count]").forEach(function (el) {
      el.textContent = ticked ? ticked + " ticked" : "None ticked";
    });
    document.querySelectorAll("[data-needs-ticked]").forEach(function (el) {
      el.disabled = ticked === 0;
    });
    document.querySelectorAll("input[data-tick-all]").forEach(function (all) {
      all.checked = boxes.length > 0 && ticked === boxes.length;
      all.indeterminate = ticked > 0 && ticked < boxes.length;
    });
  }

  document.addEventListener("change", function (event) {
    var all = event.target.closest("input[data-tick-all]");
    if (all) {
      ticks().forEach(function (box) { box.checked = all.checked; });
    }
    if (all || event.target.closest("input[data-tick]")) { updateTicked(); }
  });

  // Ticks survive a refresh of the list (after a send, the rows are drawn again).
  var keptTicks = [];
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "cart-list") {
      keptTicks = ticks().filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
    }
  });

  // --- dialogs: the cart drawer and the bulk confirmation ---------------------------------------------------
  var opener = null;

  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-open-drawer]");
    if (link) { opener = link; }
    var submit = event.target.closest("#bulk-form button");
    if (submit) { opener = submit; }
    var close = event.target.closest("[data-close-dialog]");
    if (close) {
      var dialog = close.closest("dialog");
      if (dialog) {
        event.preventDefault();
        dialog.close();
        if (close.hasAttribute("data-reload")) { reloadList(); }
      }
    }
  });

  function reloadList() {
    var list = document.getElementById("cart-list");
    if (!list || !window.htmx) { return; }
    window.htmx.ajax("GET", window.location.pathname + window.location.search, {
      target: "#cart-list", swap: "outerHTML"
    });
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (!target) { return; }
    if (target.id === "cart-drawer-body" || target.id === "bulk-dialog-body") {
      var dialog = target.closest("dialog");
      if (dialog && !dialog.open) { dialog.showModal(); }
      var heading = target.querySelector("h2");
      if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
    }
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    if (target && target.id === "cart-list" && keptTicks.length) {
      ticks().forEach(function (box) { box.checked = keptTicks.indexOf(box.value) !== -1; });
      keptTicks = [];
    }
    updateTicked();
  });

  document.addEventListener("close", function (event) {
    var dialog = event.target;
    if (!(dialog instanceof HTMLDialogElement)) { return; }
    if (opener && document.contains(opener)) { opener.focus(); }
    opener = null;
    // What happened in the drawer (a send finishing, a state change) shows in the list once it closes.
    if (dialog.id === "cart-drawer") { reloadList(); }
  }, true);

  // A send from the drawer, or a bulk send, changes the rows' states: draw the list again.
  document.body.addEventListener("cartChanged", reloadList);
  document.body.addEventListener("cartsChanged", reloadList);

  updateTicked();
})();
