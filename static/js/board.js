// The board: drag and drop (SortableJS, mouse and touch), collapsible closed columns, the phone's stage
// switcher, the filters every form sends, and live updates that redraw only the cards that changed, never
// one someone is working on. Moves always go through the server; this file only moves elements.
(function () {
  "use strict";

  function boardBody() {
    return document.getElementById("board-body");
  }

  // The filters the board shows (the board is redrawn with them, so this is never out of date).
  function boardFilters() {
    var body = boardBody();
    return body ? body.dataset.filters || "" : "";
  }

  function columnList(stageId) {
    return document.getElementById("cards-" + stageId);
  }

  function ticked(card) {
    var box = card.querySelector("input.select-card");
    return Boolean(box && box.checked);
  }

  var dragging = false;

  // Someone is working on this card: its "Move to…" menu is open, a field in it has focus, a prompt
  // asks for values, or it is being dragged. It is not redrawn until that is over.
  function busy(card) {
    if (dragging || card.classList.contains("sortable-chosen")) return true;
    if (card.querySelector("details[open], .card-prompt")) return true;
    var active = document.activeElement;
    return Boolean(active && card.contains(active) && active.matches("select, textarea, input:not(.select-card)"));
  }

  // Where the focus is in a card that is redrawn (its name, tick box, menu or the card), to put it back.
  var FOCUS_PLACES = [".order-name a", "input.select-card", ".move-menu > summary"];
  function focusPlace(card) {
    var active = document.activeElement;
    if (!active || !card.contains(active)) return null;
    if (active === card) return "";
    for (var i = 0; i < FOCUS_PLACES.length; i++) if (active.matches(FOCUS_PLACES[i])) return FOCUS_PLACES[i];
    return "";
  }

  // Does card a sort before card b in a column (newest first, then the higher id, as the server pages)?
  function sortsBefore(a, b) {
    var ca = Number(a.dataset.created), cb = Number(b.dataset.created);
    if (ca !== cb) return ca > cb;
    return Number(a.dataset.pk) > Number(b.dataset.pk);
  }

  // Put a card in its place in a column. A card that sorts below the cards loaded so far is left for the
  // column's next page, unless `keep` (a card the person moved or ticked stays in sight).
  function insertSorted(list, card, keep) {
    var items = list.querySelectorAll(":scope > li.card-item");
    for (var i = 0; i < items.length; i++) {
      if (items[i] !== card && sortsBefore(card, items[i])) {
        list.insertBefore(card, items[i]);
        return true;
      }
    }
    var more = list.querySelector(":scope > li.more");
    if (more && !keep) {
      card.remove();
      return false;
    }
    list.insertBefore(card, more);
    return true;
  }

  // A move went through (or was refused): the card belongs in the column of the stage it is in.
  function placeCard(orderId, stageId) {
    var card = document.getElementById("order-" + orderId);
    var list = columnList(stageId);
    if (!card || !list || card.parentElement === list) return;
    insertSorted(list, card, true);
  }

  // --- live updates ---------------------------------------------------------------------------------

  var pending = {}; // card id → the newer card (or "gone"), waiting until nobody works on the old one

  function put(card) {
    var old = document.getElementById(card.id);
    var place = old ? focusPlace(old) : null;
    var focused = place !== null;
    var keep = false;
    if (old && ticked(old)) {
      var box = card.querySelector("input.select-card");
      if (box) box.checked = true;
      keep = true;
    }
    var list = columnList(card.dataset.stage);
    if (old && list && old.parentElement === list &&
        old.dataset.created === card.dataset.created && old.dataset.pk === card.dataset.pk) {
      old.replaceWith(card);
    } else {
      if (old) old.remove();
      if (!list || !insertSorted(list, card, keep || focused)) return;
    }
    htmx.process(card);
    if (focused) (place ? card.querySelector(place) || card : card).focus();
  }

  function remove(id) {
    var old = document.getElementById(id);
    if (!old) return;
    if (busy(old) || ticked(old)) {
      pending[id] = "gone";
      return;
    }
    old.remove();
  }

  function apply(id, incoming) {
    var old = document.getElementById(id);
    if (old && busy(old)) {
      pending[id] = incoming;
      return;
    }
    delete pending[id];
    if (incoming === "gone") remove(id);
    else put(incoming);
  }

  function flushPending() {
    Object.keys(pending).forEach(function (id) {
      var old = document.getElementById(id);
      if (!old) {
        delete pending[id];
        return;
      }
      if (busy(old)) return;
      var incoming = pending[id];
      if (incoming === "gone" && ticked(old)) return;
      apply(id, incoming);
    });
    updateSelection();
  }

  // The poll's answer: this element again, with the changed cards in a template.
  function applyChanges(versionElement) {
    var template = versionElement.querySelector("template[data-board-cards]");
    if (!template) return;
    template.remove();
    var gone = (template.dataset.gone || "").split(" ").filter(Boolean);
    gone.forEach(function (hubspotId) { apply("order-" + hubspotId, "gone"); });
    Array.prototype.slice.call(template.content.querySelectorAll("li.card-item")).forEach(function (card) {
      apply(card.id, document.importNode(card, true));
    });
    updateSelection();
  }

  // A column header with focus in it (the collapse button) keeps its element: only its totals change.
  document.body.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail.target;
    if (!target.classList || !target.classList.contains("column-header")) return;
    if (!target.contains(document.activeElement)) return;
    var fresh = event.detail.fragment.querySelector(".column-totals");
    var mine = target.querySelector(".column-totals");
    if (fresh && mine) mine.replaceWith(fresh.cloneNode(true));
    event.detail.shouldSwap = false;
  });

  // What a server response draws anew supersedes what waits: a card's own response (a move) drops its
  // waiting update, and a board drawn again (other filters) drops them all.
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (!target) return;
    if (target.id === "board-body") pending = {};
    else if (target.classList && target.classList.contains("card-item")) delete pending[target.id];
  });

  document.addEventListener("toggle", flushPending, true); // a "Move to…" menu closed
  document.addEventListener("focusout", function () { window.setTimeout(flushPending, 0); });

  // Too much changed to send card by card: the board is drawn again, as it is filtered.
  document.body.addEventListener("boardReload", function () {
    var body = boardBody();
    if (!body) return;
    var query = boardFilters();
    htmx.ajax("GET", body.dataset.url + (query ? "?" + query : ""), {
      target: "#board-body", swap: "outerHTML",
    });
  });

  // --- drag and drop, collapsing, the phone's stage switcher ------------------------------------------

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
        onStart: function () { dragging = true; },
        onEnd: function (event) {
          dragging = false;
          var card = event.item;
          var from = event.from.dataset.stage;
          var to = event.to.dataset.stage;
          if (from === to) {
            flushPending();
            return;
          }
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

  // On a phone one column shows at a time; the switcher picks which (remembered for the pipeline).
  function showStage(stageId) {
    var body = boardBody();
    if (!body) return;
    var columns = body.querySelectorAll(".board > .column");
    var found = false;
    columns.forEach(function (column) { if (column.dataset.stage === stageId) found = true; });
    if (!found && columns.length) stageId = columns[0].dataset.stage;
    columns.forEach(function (column) {
      column.classList.toggle("column-current", column.dataset.stage === stageId);
    });
    var select = body.querySelector("[data-stage-switch]");
    if (select) select.value = stageId;
    window.sessionStorage.setItem("orderdeck.stage." + body.dataset.pipeline, stageId);
  }

  function initStageSwitch() {
    var body = boardBody();
    if (!body) return;
    showStage(window.sessionStorage.getItem("orderdeck.stage." + body.dataset.pipeline) || "");
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("[data-stage-switch]")) showStage(target.value);
    // The pipeline switch opens the chosen pipeline's board.
    if (target.matches("select[data-navigate]") && target.value) window.location.assign(target.value);
    if (target.classList.contains("select-card")) flushPending();
  });

  // --- the filters that forms send, the bulk dialog ------------------------------------------------------

  // Bulk moves, saved views and their deletion send the filters the board shows at the moment they are
  // sent (the filters may have changed without a reload since the page was drawn).
  document.addEventListener("submit", function (event) {
    if (!boardBody()) return;
    event.target.querySelectorAll("input[data-board-filters]").forEach(function (input) {
      input.value = boardFilters();
    });
  }, true);
  document.body.addEventListener("htmx:configRequest", function (event) {
    var form = event.detail.elt && event.detail.elt.closest && event.detail.elt.closest("form");
    if (!form || !boardBody()) return;
    form.querySelectorAll("input[data-board-filters]").forEach(function (input) {
      event.detail.parameters[input.name] = boardFilters();
    });
  });

  document.addEventListener("click", function (event) {
    var cancel = event.target.closest("[data-dismiss-bulk]");
    if (cancel) {
      var dialog = document.getElementById("bulk-dialog");
      if (dialog) dialog.innerHTML = "";
    }
  });

  // A bulk move went through: the moved cards are no longer a selection.
  document.body.addEventListener("boardChanged", function (event) {
    var dialog = document.getElementById("bulk-dialog");
    if (!dialog || !event.target || !dialog.contains(event.target)) return;
    document.querySelectorAll("input.select-card:checked").forEach(function (box) { box.checked = false; });
    updateSelection();
  });

  // --- the selection count ------------------------------------------------------------------------------

  function updateSelection() {
    var count = document.querySelectorAll("input.select-card:checked").length;
    document.querySelectorAll("[data-selected-count]").forEach(function (el) { el.textContent = String(count); });
  }
  document.addEventListener("change", function (event) {
    if (event.target.classList && event.target.classList.contains("select-card")) updateSelection();
  });

  // --- wiring ---------------------------------------------------------------------------------------------

  // A column's next page may bring a card the live updates already put in place: the one in place stays.
  function dropDuplicates() {
    var seen = {};
    document.querySelectorAll("ol.cards > li.card-item").forEach(function (card) {
      if (seen[card.id]) card.remove();
      else seen[card.id] = true;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    initSortable(document);
    initCollapse(document);
    initStageSwitch();
  });
  document.body.addEventListener("htmx:load", function (event) {
    var elt = event.target;
    if (elt.id === "board-version") {
      applyChanges(elt);
      return;
    }
    initSortable(elt);
    initCollapse(elt);
    if (elt.id === "board-body") initStageSwitch();
  });
  document.body.addEventListener("htmx:afterSettle", function () {
    dropDuplicates();
    initCollapse(document);
    updateSelection();
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
