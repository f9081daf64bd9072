// The board: drag and drop (SortableJS, mouse and touch), collapsible closed columns, and keeping cards in
// the right column after a move. Moves always go through the server; this file only moves elements.
(function () {
  "use strict";

  function boardFilters() {
    var body = document.getElementById("board-body");
    return body ? body.dataset.filters || "" : "";
  }

  function columnList(stageId) {
    return document.getElementById("cards-" + stageId);
  }

  // Put a card element into the list of its stage (top of the column), unless it is there already.
  function placeCard(orderId, stageId) {
    var card = document.getElementById("order-" + orderId);
    var list = columnList(stageId);
    if (!card || !list || card.parentElement === list) return;
    list.insertBefore(card, list.firstChild);
  }

  function initSortable(root) {
    if (typeof Sortable === "undefined") return;
    root.querySelectorAll("ol.cards").forEach(function (list) {
      if (list.dataset.sortable) return;
      list.dataset.sortable = "1";
      Sortable.create(list, {
        group: "board",
        animation: 120,
        // Pointer events rather than the browser's own drag and drop: one path for mouse, pen and touch.
        forceFallback: true,
        fallbackTolerance: 4,
        draggable: ".card-item",
        filter: "details, summary, select, input, button, a, .card-prompt",
        preventOnFilter: false,
        delay: 150,
        delayOnTouchOnly: true,
        onEnd: function (event) {
          var card = event.item;
          var from = event.from.dataset.stage;
          var to = event.to.dataset.stage;
          if (from === to) return;
          htmx.ajax("POST", card.dataset.moveUrl, {
            target: card,
            swap: "outerHTML",
            values: { stage: to, from_stage: from, filters: boardFilters() },
          });
        },
      });
    });
  }

  function initCollapse(root) {
    root.querySelectorAll("[data-collapse]").forEach(function (button) {
      if (button.dataset.bound) return;
      button.dataset.bound = "1";
      var key = "orderdeck.collapsed." + button.dataset.collapse;
      var column = button.closest(".column");
      function apply(collapsed) {
        column.classList.toggle("column-collapsed", collapsed);
        button.setAttribute("aria-expanded", collapsed ? "false" : "true");
      }
      apply(window.localStorage.getItem(key) === "1");
      button.addEventListener("click", function () {
        var collapsed = !column.classList.contains("column-collapsed");
        window.localStorage.setItem(key, collapsed ? "1" : "0");
        apply(collapsed);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    initSortable(document);
    initCollapse(document);
  });
  document.body.addEventListener("htmx:load", function (event) {
    initSortable(event.target);
    initCollapse(event.target);
  });
  // A move went through: the card belongs in its new column (the keyboard path leaves it where it was).
  document.body.addEventListener("orderMoved", function (event) {
    placeCard(event.detail.order, event.detail.stage);
    var card = document.getElementById("order-" + event.detail.order);
    if (card) card.focus();
  });
  // A move was refused: the card goes back to the column of the stage it is still in.
  document.body.addEventListener("moveRefused", function (event) {
    placeCard(event.detail.order, event.detail.stage);
  });
})();

// The order drawer (a modal <dialog>: opening, closing, focus, its refresh) is in drawer.js, which also
// sends a closed drawer back to the board as it is filtered now (#board-body's data-url and data-filters).

// Bulk selection: the bar counts the selected cards.
(function () {
  "use strict";
  function update() {
    var count = document.querySelectorAll("input.select-card:checked").length;
    document.querySelectorAll("[data-selected-count]").forEach(function (el) { el.textContent = String(count); });
  }
  document.addEventListener("change", function (event) {
    if (event.target.classList && event.target.classList.contains("select-card")) update();
  });
  document.body.addEventListener("htmx:afterSettle", update);
})();
