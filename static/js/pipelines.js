// The pipeline editor: its dialog (new pipeline, required properties, delete and archive with their
// previews), stage rows in the new-pipeline form, reordering stages by drag (SortableJS), the focus and the
// announcement after an arrow moved something, an arrow pressed again while its move is on its way, and
// half-typed names kept when a region is drawn again.
// Every change goes through the server; this file only moves elements and focus.
(function () {
  "use strict";

  function dialog() {
    return document.getElementById("editor-dialog");
  }

  function announce(text) {
    var live = document.getElementById("editor-live");
    if (!live || !text) return;
    // Emptied first, so the same sentence twice is said twice.
    live.textContent = "";
    window.setTimeout(function () { live.textContent = text; }, 50);
  }

  function focusById(id) {
    var element = id && document.getElementById(id);
    if (!element) return false;
    if (element.disabled) {
      // An arrow at the end of its list is disabled: the other arrow of the row takes the focus.
      var other = id.indexOf("-up-") >= 0 ? id.replace("-up-", "-down-") : id.replace("-down-", "-up-");
      element = document.getElementById(other);
      if (!element || element.disabled) return false;
    }
    element.focus();
    return true;
  }

  // --- the dialog -----------------------------------------------------------------------------------------

  var opener = null; // the id of the control that opened the dialog, to give the focus back
  var focusAfterClose = null;

  function firstField(root) {
    return root.querySelector("[autofocus]") ||
      root.querySelector("select:not([disabled]), input:not([type=hidden]):not([disabled]), button:not([disabled])");
  }

  function openDialog(trigger) {
    var box = dialog();
    if (!box) return;
    if (!box.open) {
      opener = trigger && trigger.id ? trigger.id : null;
      box.showModal();
      var field = firstField(box);
      if (field) field.focus();
    }
  }

  function closeDialog(focusId) {
    var box = dialog();
    focusAfterClose = focusId || null;
    if (box && box.open) box.close();
  }

  document.addEventListener("close", function (event) {
    if (event.target !== dialog()) return;
    document.getElementById("editor-dialog-body").innerHTML = "";
    var target = focusAfterClose || opener;
    focusAfterClose = null;
    if (!focusById(target)) {
      var fallback = document.getElementById("new-pipeline");
      if (fallback) fallback.focus();
    }
  }, true);

  document.addEventListener("click", function (event) {
    var box = dialog();
    var close = event.target.closest("[data-dialog-close]");
    if (close && box && box.contains(close)) {
      event.preventDefault();
      closeDialog();
      return;
    }
    // A click on the backdrop (the dialog element itself, outside its content) closes it.
    if (box && event.target === box) closeDialog();
  });

  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "editor-dialog-body") {
      openDialog(event.detail.requestConfig && event.detail.requestConfig.elt);
    }
  });

  // An edit went through: say what changed, close the dialog it came from, move the focus where it belongs.
  document.body.addEventListener("editorDone", function (event) {
    var detail = event.detail || {};
    announce(detail.announce);
    if (detail.close) closeDialog(detail.focus);
    else if (detail.focus) focusById(detail.focus);
  });

  // --- stage rows of the new-pipeline form ------------------------------------------------------------------

  var MAX_ROWS = 30;

  function rowsList(from) {
    var form = from.closest("form");
    return form && form.querySelector(".new-stage-rows");
  }

  function updateAddButton(form) {
    var list = form.querySelector(".new-stage-rows");
    var add = form.querySelector("[data-add-stage-row]");
    if (list && add) add.disabled = list.children.length >= MAX_ROWS;
  }

  document.addEventListener("click", function (event) {
    var add = event.target.closest("[data-add-stage-row]");
    if (add) {
      var list = rowsList(add);
      var template = add.closest("form").querySelector("#new-stage-row-template");
      if (!list || !template || list.children.length >= MAX_ROWS) return;
      var row = template.content.firstElementChild.cloneNode(true);
      list.appendChild(row);
      row.querySelector("input").focus();
      updateAddButton(add.closest("form"));
      return;
    }
    var remove = event.target.closest("[data-remove-stage-row]");
    if (remove) {
      var item = remove.closest("li");
      var form = remove.closest("form");
      var rows = item.parentElement;
      if (rows.children.length <= 1) {
        item.querySelector("input").value = "";
        item.querySelector("input").focus();
        return;
      }
      var next = item.nextElementSibling || item.previousElementSibling;
      item.remove();
      next.querySelector("input").focus();
      updateAddButton(form);
    }
  });

  // --- the rules dialog's filter ----------------------------------------------------------------------------

  document.addEventListener("input", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("[data-filter-list]")) return;
    var list = document.querySelector(input.dataset.filterList);
    if (!list) return;
    var query = input.value.trim().toLowerCase();
    list.querySelectorAll("li[data-filter-text]").forEach(function (item) {
      item.hidden = Boolean(query) && item.dataset.filterText.indexOf(query) < 0;
    });
  });

  // --- inline names: Escape puts the saved name back; a half-typed one survives a redraw ---------------------

  document.addEventListener("keydown", function (event) {
    var input = event.target;
    if (event.key !== "Escape" || !input.matches || !input.matches("input.inline-input[data-saved]")) return;
    if (input.value === input.dataset.saved) return;
    event.preventDefault();
    input.value = input.dataset.saved;
    // A refusal shown for what was typed is over too.
    var error = input.getAttribute("aria-describedby");
    if (error && document.getElementById(error)) document.getElementById(error).remove();
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
    input.defaultValue = input.dataset.saved;
  });

  var typing = null; // {id, value, start, end} of a name being typed when its region is drawn again

  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var active = document.activeElement;
    var target = event.detail.target;
    typing = null;
    if (!active || !target || !active.id || !target.contains(active)) return;
    if (!active.matches("input.inline-input, input[type=number]")) return;
    if (active.value === active.defaultValue) return;
    typing = { id: active.id, value: active.value, start: active.selectionStart, end: active.selectionEnd };
  });

  document.body.addEventListener("htmx:afterSwap", function () {
    if (!typing) return;
    var input = document.getElementById(typing.id);
    if (input && input.value !== typing.value) {
      input.value = typing.value;
      input.dataset.typed = "1";
      if (document.activeElement === input && typing.start !== null) {
        try { input.setSelectionRange(typing.start, typing.end); } catch (error) { /* a number field */ }
      }
    }
    typing = null;
  });

  // A restored value was typed, not saved: leaving the field saves it as leaving an edited field does.
  document.addEventListener("focusout", function (event) {
    var input = event.target;
    if (!input.dataset || !input.dataset.typed) return;
    delete input.dataset.typed;
    if (input.value !== input.defaultValue) input.dispatchEvent(new Event("change", { bubbles: true }));
  });

  // --- an arrow pressed again while its move is on its way ---------------------------------------------------
  // A move redraws the region that holds its arrow, and htmx drops a request queued on an element that is
  // gone: a press made meanwhile is kept here (by the arrow's id) and made on the new arrow once the move is
  // drawn, so ↓ pressed twice quickly moves twice.

  var ARROW = /^(stage|pipeline)-(up|down)-/;
  var arrowMoves = []; // the requests of arrow moves sent and not drawn yet
  var pressesKept = []; // ids of the arrows pressed meanwhile, in order

  function moveOnItsWay() {
    return arrowMoves.some(function (xhr) { return xhr.readyState !== 4; });
  }

  // In the capture phase, before htmx's own listener on the form sees the submit.
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (!button || !ARROW.test(button.id || "") || !moveOnItsWay()) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    pressesKept.push(button.id);
  }, true);

  document.body.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt && elt.matches && elt.matches("form.arrows")) arrowMoves.push(event.detail.xhr);
  });

  document.body.addEventListener("htmx:afterSettle", function () {
    arrowMoves = arrowMoves.filter(function (xhr) { return xhr.readyState !== 4; });
    if (arrowMoves.length || !pressesKept.length) return;
    var button = document.getElementById(pressesKept.shift());
    if (button && !button.disabled) button.click();
    else pressesKept = []; // at the end of its list, or gone: the presses after it are moot
  });

  // A move that failed is not drawn: the presses kept after it are not made either.
  ["htmx:responseError", "htmx:sendError"].forEach(function (name) {
    document.body.addEventListener(name, function () { pressesKept = []; });
  });

  // --- reordering stages by drag ----------------------------------------------------------------------------

  function initSortable(root) {
    if (typeof Sortable === "undefined") return;
    var lists = root.matches && root.matches("ol.stage-list[data-sortable]") ? [root] : [];
    root.querySelectorAll("ol.stage-list[data-sortable]").forEach(function (list) { lists.push(list); });
    lists.forEach(function (list) {
      if (list.dataset.bound) return;
      list.dataset.bound = "1";
      Sortable.create(list, {
        handle: ".drag-handle",
        draggable: ".stage",
        animation: 150,
        // Pointer events rather than the browser's drag and drop: one path for mouse, pen and touch.
        forceFallback: true,
        fallbackTolerance: 3,
        ghostClass: "stage-ghost",
        chosenClass: "stage-chosen",
        onEnd: function (event) {
          if (event.oldIndex === event.newIndex) return;
          var stages = Array.prototype.map.call(list.querySelectorAll(":scope > li.stage"), function (row) {
            return row.dataset.stage;
          });
          var region = list.closest(".stages");
          htmx.ajax("POST", list.dataset.orderUrl, {
            source: list,
            target: "#" + region.id,
            swap: "outerHTML",
            values: { stage: stages },
          });
        },
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { initSortable(document); });
  document.body.addEventListener("htmx:load", function (event) { initSortable(event.target); });
})();
