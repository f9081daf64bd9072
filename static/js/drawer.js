// The order drawer: a modal dialog over the board (a native <dialog> opened with showModal(), so the board
// under it is inert), and the drawer's own refresh, which swaps only what changed and never what a person is
// working in. The same refresh runs on an order's own page (/boards/orders/<id>/), where there is no dialog.
(function () {
  "use strict";

  var GROUP_KEY = "orderdeck.drawer.group.";
  var opener = null; // the element that opened the drawer, to give the focus back to
  var openerOrder = null; // …and its order, in case a live redraw replaced that element meanwhile

  function drawer() { return document.getElementById("drawer"); }
  function isDialog(d) { return d && typeof d.showModal === "function"; }

  function focusables(root) {
    return Array.prototype.filter.call(
      root.querySelectorAll("a[href], button, input, select, textarea, summary, [tabindex]"),
      function (el) {
        return !el.disabled && el.tabIndex >= 0 && el.type !== "hidden" && el.getClientRects().length > 0;
      }
    );
  }

  // The card that opened the drawer, even when the board redrew it while the drawer was open.
  function returnFocus() {
    var target = null;
    if (openerOrder) {
      var card = document.getElementById("order-" + openerOrder);
      if (card) target = card.querySelector(".order-name a") || card;
    }
    if (!target && opener && opener.isConnected) target = opener;
    opener = null;
    openerOrder = null;
    if (target) target.focus();
  }

  // Closing goes back to the board as it is filtered now (filters change without a reload).
  function rememberBoardUrl(d) {
    var body = document.getElementById("board-body");
    if (!body || !body.dataset.url) return;
    var query = body.dataset.filters || "";
    d.dataset.boardUrl = body.dataset.url + (query ? "?" + query : "");
  }

  function open(d) {
    rememberBoardUrl(d);
    if (isDialog(d) && !d.open) d.showModal();
    d.classList.add("drawer-open");
    var title = d.querySelector("#drawer-title");
    if (title) {
      title.setAttribute("tabindex", "-1");
      title.focus();
    }
    applyGroupState(d);
  }

  function close(push) {
    var d = drawer();
    if (!d) return;
    if (isDialog(d) && d.open) {
      d.dataset.push = push ? "1" : "";
      d.close(); // the "close" listener below does the rest
      return;
    }
    finishClose(d, push);
  }

  function finishClose(d, push) {
    d.classList.remove("drawer-open");
    d.innerHTML = "";
    if (push) history.pushState({}, "", d.dataset.boardUrl || window.location.pathname);
    returnFocus();
  }

  // --- opening and closing ---------------------------------------------------------------------------------

  document.addEventListener("htmx:beforeRequest", function (event) {
    var d = drawer();
    if (!d || event.detail.target !== d || d.open) return;
    opener = event.detail.elt;
    var card = opener && opener.closest ? opener.closest("[data-order]") : null;
    openerOrder = card ? card.dataset.order : null;
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var d = drawer();
    if (d && event.detail.target === d) open(d);
  });

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("[data-close-drawer]") : null;
    var d = drawer();
    if (link && d && d.contains(link)) {
      event.preventDefault();
      close(true);
    }
  });

  function bindDialog() {
    var d = drawer();
    if (!d || d.dataset.bound) return;
    d.dataset.bound = "1";
    d.dataset.boardUrl = window.location.pathname + window.location.search;
    // Escape closes a modal dialog by itself (the "cancel" event, then "close").
    d.addEventListener("cancel", function () { d.dataset.push = "1"; });
    d.addEventListener("close", function () { finishClose(d, d.dataset.push === "1"); });
    // A click on the backdrop (outside the panel) closes it too.
    d.addEventListener("click", function (event) {
      if (event.target === d) close(true);
    });
    // Tab and Shift+Tab go round the drawer's own controls.
    d.addEventListener("keydown", function (event) {
      if (event.key !== "Tab") return;
      var items = focusables(d);
      if (!items.length) return;
      var first = items[0];
      var last = items[items.length - 1];
      var active = document.activeElement;
      if (event.shiftKey && (active === first || !d.contains(active) || active.id === "drawer-title")) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && (active === last || !d.contains(active))) {
        event.preventDefault();
        first.focus();
      }
    });
  }

  // Escape in an inline edit cancels the edit (the focus goes back to its Edit link), not the whole drawer.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || !document.activeElement || !document.activeElement.closest) return;
    var form = document.activeElement.closest(".drawer-body .property-form");
    var cancel = form && form.querySelector("a[hx-get]");
    if (!cancel) return;
    event.preventDefault();
    event.stopPropagation();
    cancel.click();
  }, true);

  window.addEventListener("popstate", function () {
    if (!/\/orders\//.test(window.location.pathname)) close(false);
  });

  // --- open and closed groups are remembered ------------------------------------------------------------

  function applyGroupState(root) {
    root.querySelectorAll("details[data-group]").forEach(function (details) {
      var stored = window.localStorage.getItem(GROUP_KEY + details.dataset.group);
      if (stored === "open") details.open = true;
      if (stored === "closed") details.open = false;
    });
  }

  // "toggle" doesn't bubble: listen in the capture phase.
  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (!details.matches || !details.matches(".drawer-body details[data-group]")) return;
    window.localStorage.setItem(GROUP_KEY + details.dataset.group, details.open ? "open" : "closed");
  }, true);

  // --- the refresh: only what changed, never under the person ----------------------------------------------

  // Tell the server which version of each region and row the drawer shows; it answers with the changed ones.
  document.addEventListener("htmx:configRequest", function (event) {
    var elt = event.detail.elt;
    if (!elt.hasAttribute || !elt.hasAttribute("data-drawer-refresh")) return;
    var seen = [];
    elt.querySelectorAll("[data-v][id]").forEach(function (region) {
      seen.push(region.id + ":" + region.dataset.v);
    });
    event.detail.parameters.seen = seen.join(",");
  });

  function inDrawer(el) {
    return el && el.closest && el.closest(".drawer-body");
  }

  // A region being edited or holding the focus is left as it is (its new version comes with the next
  // refresh), and so is one that didn't change.
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail.target;
    if (!inDrawer(target)) return;
    var incoming = event.detail.fragment && event.detail.fragment.firstElementChild;
    var active = document.activeElement;
    if (
      (active && active !== document.body && target.contains(active)) ||
      target.querySelector(".property-form") ||
      (incoming && incoming.dataset && incoming.dataset.v === target.dataset.v)
    ) {
      event.detail.shouldSwap = false;
    }
  });

  // After an inline edit opens, saves or cancels, the focus stays in that row: on the input while editing,
  // on its Edit link after.
  var focusedRow = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    focusedRow = null;
    if (target && target.classList && target.classList.contains("property-row") && inDrawer(target)) {
      var active = document.activeElement;
      if (!active || active === document.body || target.contains(active)) focusedRow = target.id;
    }
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!focusedRow) return;
    var row = document.getElementById(focusedRow);
    focusedRow = null;
    if (!row) return;
    // Between the swap and the settle the person may have gone on to another field: leave the focus there.
    var active = document.activeElement;
    if (active && active !== document.body && !row.contains(active)) return;
    var input = row.querySelector(".property-form input:not([type=hidden]), .property-form select, .property-form textarea");
    var target = input || row.querySelector("a.edit");
    if (target) target.focus();
  });

  document.addEventListener("DOMContentLoaded", function () {
    bindDialog();
    // An order's own page: the same remembered groups.
    document.querySelectorAll("main .drawer-body").forEach(applyGroupState);
  });
})();
