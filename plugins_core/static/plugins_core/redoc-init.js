// ReDoc with the settings drf-spectacular renders (REDOC_UI_SETTINGS), from data attributes.
(function () {
  "use strict";
  var root = document.getElementById("redoc-container");
  Redoc.init(root.dataset.specUrl, JSON.parse(root.dataset.settings || "{}"), root);
})();
