// Live preview of a search template: asks the server (which validates it against the
// allowlisted variables) for the expansion for a sample project. No dependencies.
(function () {
  "use strict";
  document.querySelectorAll("[data-preview-url]").forEach(function (output) {
    var template = document.getElementById(output.dataset.templateInput);
    var project = output.dataset.projectInput ? document.getElementById(output.dataset.projectInput) : null;
    if (!template) { return; }
    var timer = null;
    function refresh() {
      var params = new URLSearchParams({ template: template.value, tab: output.dataset.tab || "" });
      if (project) {
        if (!project.value) { output.textContent = "Choose a sample project to preview."; return; }
        params.set("project", project.value);
      }
      fetch(output.dataset.previewUrl + "?" + params.toString(), {
        credentials: "same-origin", headers: { Accept: "application/json" }
      }).then(function (response) { return response.json(); }).then(function (body) {
        output.classList.toggle("error", !body.ok);
        output.textContent = body.ok ? (body.value || "(empty)") : body.error;
      }).catch(function () { output.textContent = "Preview unavailable."; });
    }
    function schedule() { clearTimeout(timer); timer = setTimeout(refresh, 200); }
    template.addEventListener("input", schedule);
    if (project) { project.addEventListener("change", refresh); }
    refresh();
  });
})();
