// Catalog card grid: filter by type and search text (no inline script: CSP-compatible).
(function () {
  "use strict";
  function setup(root) {
    var grid = root.querySelector("[data-catalog-grid]");
    if (!grid) { return; }
    var search = root.querySelector("[data-catalog-search]");
    var count = root.querySelector("[data-catalog-count]");
    var empty = root.querySelector("[data-catalog-empty]");
    var buttons = root.querySelectorAll("[data-catalog-type]");
    var type = "";
    function apply() {
      var text = (search && search.value || "").trim().toLowerCase();
      var shown = 0;
      grid.querySelectorAll(".catalog-card").forEach(function (card) {
        var ok = (!type || card.dataset.type === type) &&
          (!text || card.dataset.search.indexOf(text) !== -1);
        card.hidden = !ok;
        if (ok) { shown += 1; }
      });
      if (count) { count.textContent = shown + " shown"; }
      if (empty) { empty.hidden = shown !== 0; }
    }
    buttons.forEach(function (button) {
      button.addEventListener("click", function () {
        type = button.dataset.catalogType;
        buttons.forEach(function (b) { b.classList.toggle("active", b === button); });
        apply();
      });
    });
    if (search) { search.addEventListener("input", apply); }
    apply();
  }
  document.addEventListener("DOMContentLoaded", function () { setup(document); });
})();
