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
    // The filter state lives in the URL (?type=logs&q=aws): a reload or a shared link
    // shows the same cards; aria-pressed (and a check mark) says which type is on.
    var params = new URLSearchParams(window.location.search);
    var type = params.get("type") || "";
    if (search && params.get("q")) { search.value = params.get("q"); }
    function mark() {
      buttons.forEach(function (b) {
        var on = b.dataset.catalogType === type;
        b.classList.toggle("active", on);
        b.setAttribute("aria-pressed", on ? "true" : "false");
      });
    }
    function remember() {
      var url = new URL(window.location.href);
      var text = (search && search.value || "").trim();
      if (type) { url.searchParams.set("type", type); } else { url.searchParams.delete("type"); }
      if (text) { url.searchParams.set("q", text); } else { url.searchParams.delete("q"); }
      window.history.replaceState(null, "", url);
    }
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
        mark();
        apply();
        remember();
      });
    });
    if (search) { search.addEventListener("input", function () { apply(); remember(); }); }
    if (!Array.prototype.some.call(buttons, function (b) { return b.dataset.catalogType === type; })) {
      type = "";
    }
    mark();
    apply();
  }
  document.addEventListener("DOMContentLoaded", function () { setup(document); });
})();
