// Keyboard: "[" and "]" move the focus to the previous or next column of the board (to its first card, or to
// its heading when it has none), so the second column isn't a hundred Tab stops away. The board's help line
// says so. Keys typed into a field, or while the drawer is open, are left alone.
(function () {
  "use strict";

  function shown(el) {
    return el.getClientRects().length > 0;
  }

  function focusColumn(column) {
    var target = column.querySelector(".card-item .order-name a");
    if (!target || !shown(target)) {
      target = column.querySelector(".column-header h2");
      if (target) target.setAttribute("tabindex", "-1");
    }
    if (!target) return;
    target.focus();
    column.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  document.addEventListener("keydown", function (event) {
    if (event.key !== "[" && event.key !== "]") return;
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    var where = event.target;
    if (where.closest && where.closest("input, select, textarea, [contenteditable], dialog")) return;
    var columns = Array.prototype.filter.call(document.querySelectorAll(".board .column"), shown);
    if (!columns.length) return;
    var current = where.closest ? where.closest(".board .column") : null;
    var index = current ? columns.indexOf(current) : -1;
    var next = event.key === "]" ? index + 1 : index - 1;
    if (index === -1) next = 0;
    if (next < 0 || next >= columns.length) return;
    event.preventDefault();
    focusColumn(columns[next]);
  });
})();
