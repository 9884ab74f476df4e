// The project page: tab switching, and the Configuration and Logs tabs filled from the REST
// API with the session cookie (and the CSRF token). Every value is inserted as text, never
// as HTML. Secret values are fetched only when the user clicks "Reveal" (the API checks the
// permission and writes the audit record); the button exists only for users who may read
// secrets.
(function () {
  "use strict";
  var app = document.getElementById("project-app");
  if (!app) { return; }
  var canReveal = app.dataset.canReveal === "1";
  var headers = { Accept: "application/json", "X-CSRFToken": app.dataset.csrf };
  var state = { source: { configuration: "", logs: "" }, logQuery: "", cursor: null, logsLoaded: false };

  function $(selector) { return document.querySelector(selector); }
  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = text; }
    if (className) { node.className = className; }
    return node;
  }
  function button(text, className, onClick) {
    var node = el("button", text, className);
    node.type = "button";
    node.addEventListener("click", onClick);
    return node;
  }
  function format(value) {
    return typeof value === "string" ? value : JSON.stringify(value);
  }
  function when(text) { return text ? new Date(text).toLocaleString() : "—"; }

  function api(url, params) {
    var query = params ? "?" + params.toString() : "";
    return fetch(url + query, { credentials: "same-origin", headers: headers }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) { throw new Error(body.detail || body.title || response.statusText); }
        return body;
      });
    });
  }
  function problem(name, error) {
    var box = $('[data-problem="' + name + '"]');
    box.hidden = !error;
    box.textContent = error ? error.message : "";
  }
  function message(tbody, text) {
    tbody.textContent = "";
    var row = el("tr");
    var cell = el("td", text, "muted");
    cell.colSpan = 4;
    row.appendChild(cell);
    tbody.appendChild(row);
  }

  // --- tabs -------------------------------------------------------------------------------
  function show(panel) {
    document.querySelectorAll(".tabs .tab").forEach(function (tab) {
      var active = tab.dataset.panel === panel;
      tab.classList.toggle("active", active);
      tab.setAttribute("aria-selected", String(active));
    });
    document.querySelectorAll(".panel").forEach(function (section) {
      section.hidden = section.id !== "panel-" + panel;
    });
    if (panel === "logs" && !state.logsLoaded) {
      state.logsLoaded = true;
      ready.then(function () { searchLogs(false); }, function (error) { problem("logs", error); });
    }
    history.replaceState(null, "", "#" + panel);
  }
  document.querySelectorAll(".tabs .tab").forEach(function (tab) {
    tab.addEventListener("click", function () { show(tab.dataset.panel); });
  });

  // --- sources (several plugins may serve one tab) ------------------------------------------
  function loadSources() {
    return api(app.dataset.tabsUrl).then(function (body) {
      ["configuration", "logs"].forEach(function (name) {
        var select = $('[data-source="' + name + '"]');
        var tab = body.tabs.filter(function (t) { return t.tab === name; })[0];
        var sources = tab ? tab.sources : [];
        select.textContent = "";
        sources.forEach(function (source) {
          var label = source.name + (source.status === "ok" ? "" : " (" + source.status + ")");
          var option = el("option", label);
          option.value = source.slug;
          option.title = source.reason || "";
          if (source.selected) { option.selected = true; state.source[name] = source.slug; }
          select.appendChild(option);
        });
        if (!state.source[name] && sources.length) { state.source[name] = sources[0].slug; }
        select.value = state.source[name];
        select.disabled = sources.length < 2;
        select.addEventListener("change", function () {
          state.source[name] = select.value;
          if (name === "configuration") { loadConfig(); } else { searchLogs(false); }
        });
      });
    });
  }

  // --- configuration --------------------------------------------------------------------------
  function masked(cell, key) {
    cell.textContent = "";
    cell.appendChild(el("span", "••••••••", "masked"));
    if (canReveal) {
      cell.appendChild(button("Reveal", "secondary small", function (event) {
        reveal(key, cell, event.target);
      }));
    }
  }
  function reveal(key, cell, trigger) {
    trigger.disabled = true;
    var params = new URLSearchParams({ keys: key, reveal: "true", source: state.source.configuration });
    api(app.dataset.valuesUrl, params).then(function (body) {
      var value = body.values.filter(function (v) { return v.key === key; })[0];
      cell.textContent = "";
      cell.appendChild(el("code", value ? format(value.value) : "(no longer exists)", "revealed"));
      cell.appendChild(button("Hide", "secondary small", function () { masked(cell, key); }));
    }).catch(function (error) { trigger.disabled = false; problem("configuration", error); });
  }
  function loadConfig() {
    var tbody = $('[data-rows="configuration"]');
    problem("configuration", null);
    if (!state.source.configuration) { message(tbody, "No plugin serves the Configuration tab of this project."); return; }
    message(tbody, "Loading…");
    api(app.dataset.valuesUrl, new URLSearchParams({ source: state.source.configuration })).then(function (body) {
      tbody.textContent = "";
      if (!body.values.length) { message(tbody, "No keys under this project's path."); }
      body.values.forEach(function (item) {
        var row = el("tr");
        row.dataset.key = item.key;
        row.appendChild(el("td", item.key, "key"));
        var secretNote = item.secret && item.data_type !== "secret" ? " · secret" : "";
        row.appendChild(el("td", item.data_type + secretNote));
        var cell = el("td", null, "value");
        if (item.masked) { masked(cell, item.key); } else { cell.appendChild(el("code", format(item.value))); }
        row.appendChild(cell);
        row.appendChild(el("td", when(item.last_modified), "muted"));
        tbody.appendChild(row);
      });
    }).catch(function (error) { message(tbody, ""); problem("configuration", error); });
  }
  $('[data-action="reload-config"]').addEventListener("click", loadConfig);

  // --- logs -------------------------------------------------------------------------------------
  var form = $('[data-form="logs"]');
  var more = $('[data-action="more-logs"]');
  form.elements.range.addEventListener("change", function () {
    form.querySelectorAll(".custom-range").forEach(function (label) {
      label.hidden = form.elements.range.value !== "custom";
    });
  });
  function logQuery() {
    var params = new URLSearchParams();
    var end = new Date();
    var start;
    if (form.elements.range.value === "custom") {
      if (form.elements.end.value) { end = new Date(form.elements.end.value); }
      start = form.elements.start.value ? new Date(form.elements.start.value) : new Date(end.getTime() - 3600000);
    } else {
      start = new Date(end.getTime() - Number(form.elements.range.value) * 60000);
    }
    params.set("start", start.toISOString());
    params.set("end", end.toISOString());
    form.querySelectorAll('input[name="level"]:checked').forEach(function (box) { params.append("level", box.value); });
    if (form.elements.q.value.trim()) { params.set("q", form.elements.q.value.trim()); }
    form.elements.filter.value.split("\n").map(function (line) { return line.trim(); })
      .filter(Boolean).forEach(function (line) { params.append("filter", line); });
    if (state.source.logs) { params.set("source", state.source.logs); }
    params.set("limit", "50");
    return params.toString();
  }
  function logRow(entry) {
    var row = el("tr", null, "level-" + (entry.level || "none"));
    var time = el("td", when(entry.timestamp), "time");
    time.title = entry.timestamp;
    row.appendChild(time);
    row.appendChild(el("td", entry.level || "—", "level"));
    row.appendChild(el("td", entry.message, "message"));
    var fields = Object.keys(entry.fields || {}).map(function (k) { return k + "=" + format(entry.fields[k]); });
    row.appendChild(el("td", fields.join("  "), "fields muted"));
    return row;
  }
  function searchLogs(append) {
    var tbody = $('[data-rows="logs"]');
    var warnings = $('[data-warnings="logs"]');
    problem("logs", null);
    if (!state.source.logs) { message(tbody, "No plugin serves the Logs tab of this project."); more.hidden = true; return; }
    if (append && !state.cursor) { more.hidden = true; return; }
    if (!append) { state.logQuery = logQuery(); state.cursor = null; message(tbody, "Searching…"); }
    var params = new URLSearchParams(state.logQuery);
    if (append && state.cursor) { params.set("cursor", state.cursor); }
    more.disabled = true;
    api(app.dataset.logsUrl, params).then(function (body) {
      if (!append) { tbody.textContent = ""; }
      if (!append && !body.entries.length) { message(tbody, "No log lines match."); }
      body.entries.forEach(function (entry) { tbody.appendChild(logRow(entry)); });
      state.cursor = body.next_cursor;
      more.hidden = !body.next_cursor;
      more.disabled = false;
      warnings.hidden = !body.warnings.length;
      warnings.textContent = body.warnings.join(" ");
    }).catch(function (error) {
      more.disabled = false;
      if (!append) { message(tbody, ""); }
      problem("logs", error);
    });
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    ready.then(function () { searchLogs(false); }, function (error) { problem("logs", error); });
  });
  more.addEventListener("click", function () { searchLogs(true); });

  // --- start: the sources first, then the configuration; the logs when their tab opens ---------
  var ready = loadSources();
  ready.then(loadConfig, function (error) { problem("configuration", error); });
  var wanted = (location.hash || "").slice(1);
  if (wanted === "logs" || wanted === "plugins") { show(wanted); }
})();
