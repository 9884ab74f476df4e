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
  var state = { source: { configuration: "", logs: "" }, sources: {}, logQuery: "", cursor: null, logsLoaded: false };
  var canWrite = app.dataset.canWrite === "1";

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

  function api(url, params, method, payload) {
    var query = params ? "?" + params.toString() : "";
    var init = { credentials: "same-origin", headers: headers, method: method || "GET" };
    if (payload !== undefined) {
      init.headers = Object.assign({ "Content-Type": "application/json" }, headers);
      init.body = JSON.stringify(payload);
    }
    return fetch(url + query, init).then(function (response) {
      if (response.status === 204) { return {}; }
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) {
          var error = new Error(body.detail || body.title || response.statusText);
          error.fields = body.errors || {};
          error.code = body.code;
          throw error;
        }
        return body;
      });
    });
  }
  // The API's field errors next to the field they name (data-field-error="<name>"), within
  // ``scope``; the rest, or a problem without field errors, in the tab's problem box.
  function fieldErrors(scope, error) {
    var shown = false;
    scope.querySelectorAll("[data-field-error]").forEach(function (box) {
      var messages = error && error.fields ? error.fields[box.dataset.fieldError] : null;
      if (messages && !Array.isArray(messages)) { messages = [String(messages)]; }
      box.hidden = !messages;
      box.textContent = messages ? messages.join(" ") : "";
      shown = shown || Boolean(messages);
    });
    return shown;
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
    cell.colSpan = 5;
    row.appendChild(cell);
    tbody.appendChild(row);
  }

  // --- tabs -------------------------------------------------------------------------------
  function show(panel) {
    document.querySelectorAll(".tabs .tab").forEach(function (tab) {
      var active = tab.dataset.panel === panel;
      tab.classList.toggle("active", active);
      tab.setAttribute("aria-selected", String(active));
      tab.tabIndex = active ? 0 : -1;  // one tab stop; the arrow keys move between tabs
    });
    document.querySelectorAll(".panel").forEach(function (section) {
      section.hidden = section.id !== "panel-" + panel;
    });
    if (panel === "logs" && !state.logsLoaded) {
      state.logsLoaded = true;
      ready.then(function () { searchLogs(false); }, function (error) { problem("logs", error); });
    }
    var url = new URL(location.href);
    url.searchParams.set("tab", panel);
    url.hash = "";
    history.replaceState(null, "", url.toString());
  }
  var tabs = Array.prototype.slice.call(document.querySelectorAll(".tabs .tab"));
  tabs.forEach(function (tab, index) {
    tab.addEventListener("click", function (event) { event.preventDefault(); show(tab.dataset.panel); });
    // WAI-ARIA tabs: arrow keys (and Home/End) move to another tab and open it.
    tab.addEventListener("keydown", function (event) {
      var to = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 }[event.key];
      if (to === undefined) { return; }
      event.preventDefault();
      var next = tabs[(to + tabs.length) % tabs.length];
      show(next.dataset.panel);
      next.focus();
    });
  });

  // --- confirmations for destructive actions (no inline script: CSP) --------------------------
  document.querySelectorAll("[data-confirm]").forEach(function (trigger) {
    var target = trigger.form || trigger;
    target.addEventListener(trigger.form ? "submit" : "click", function (event) {
      if (!window.confirm(trigger.dataset.confirm)) { event.preventDefault(); event.stopImmediatePropagation(); }
    });
  });

  // --- sources (several plugins may serve one tab) ------------------------------------------
  function loadSources() {
    return api(app.dataset.tabsUrl).then(function (body) {
      ["configuration", "logs"].forEach(function (name) {
        var select = $('[data-source="' + name + '"]');
        var tab = body.tabs.filter(function (t) { return t.tab === name; })[0];
        var sources = tab ? tab.sources : [];
        select.textContent = "";
        var marker = $('[data-default-marker="' + name + '"]');
        sources.forEach(function (source) {
          var notes = [];
          if (source.default) { notes.push("default"); }
          if (source.status !== "ok") { notes.push(source.status); }
          var label = source.name + (notes.length ? " (" + notes.join(", ") + ")" : "");
          if (source.default && marker) { marker.textContent = "Default source: " + source.name; }
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
        state.sources[name] = sources;
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
        if (canWrite) {
          var actions = el("td", null, "actions");
          actions.appendChild(button("Edit", "secondary small", function () { editKey(item); }));
          actions.appendChild(button("Delete", "danger small", function () { deleteKey(item.key); }));
          row.appendChild(actions);
        }
        tbody.appendChild(row);
      });
    }).catch(function (error) { message(tbody, ""); problem("configuration", error); });
  }
  $('[data-action="reload-config"]').addEventListener("click", loadConfig);

  // --- configuration: add, edit (secret values write-only) and delete ----------------------------
  var configForm = $('[data-form="config"]');
  function keyUrl(key) {
    return app.dataset.keysUrl + key.split("/").map(encodeURIComponent).join("/");
  }
  // A secret value is typed like a password, never in clear text.
  function syncSecret() {
    if (!configForm) { return; }
    var secret = configForm.elements.secret.checked || configForm.elements.data_type.value === "secret";
    configForm.elements.value.type = secret ? "password" : "text";
    configForm.elements.value.autocomplete = secret ? "new-password" : "off";
  }
  function resetConfigForm() {
    if (!configForm) { return; }
    configForm.reset();
    configForm.elements.key.readOnly = false;
    configForm.elements.value.placeholder = "";
    $("[data-config-title]").textContent = "Add a key";
    $('[data-action="config-cancel"]').hidden = true;
    $("[data-secret-note]").hidden = true;
    fieldErrors(configForm, null);
    syncSecret();
  }
  function editKey(item) {
    resetConfigForm();
    configForm.elements.key.value = item.key;
    configForm.elements.key.readOnly = true;
    configForm.elements.data_type.value = item.data_type;
    configForm.elements.secret.checked = item.secret;
    syncSecret();
    if (item.secret) {
      configForm.elements.value.value = "";  // never pre-filled: write-only
      configForm.elements.value.placeholder = "type a new value to replace the secret";
      $("[data-secret-note]").hidden = false;
    } else {
      configForm.elements.value.value = format(item.value);
    }
    $("[data-config-title]").textContent = "Edit " + item.key;
    $('[data-action="config-cancel"]').hidden = false;
    configForm.elements.value.focus();
  }
  function typed(type, text) {
    if (type === "number") { return text.trim() !== "" && !isNaN(Number(text)) ? Number(text) : text; }
    if (type === "boolean") { return text === "true" ? true : text === "false" ? false : text; }
    if (type === "json") { try { return JSON.parse(text); } catch (e) { return text; } }
    return text;
  }
  function deleteKey(key) {
    if (!window.confirm("Delete " + key + " from this project's configuration? This cannot be undone.")) { return; }
    api(keyUrl(key), new URLSearchParams({ source: state.source.configuration }), "DELETE")
      .then(loadConfig).catch(function (error) { problem("configuration", error); });
  }
  if (configForm) {
    configForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var key = configForm.elements.key.value.trim();
      fieldErrors(configForm, null);
      problem("configuration", null);
      if (!key) { fieldErrors(configForm, { fields: { key: ["Enter a key."] } }); return; }
      var type = configForm.elements.data_type.value;
      var payload = {
        data_type: type,
        value: typed(type, configForm.elements.value.value),
        secret: configForm.elements.secret.checked
      };
      api(keyUrl(key), new URLSearchParams({ source: state.source.configuration }), "PUT", payload)
        .then(function () { resetConfigForm(); loadConfig(); })
        .catch(function (error) {
          if (!fieldErrors(configForm, error)) { problem("configuration", error); }
        });
    });
    $('[data-action="config-cancel"]').addEventListener("click", resetConfigForm);
    configForm.elements.secret.addEventListener("change", syncSecret);
    configForm.elements.data_type.addEventListener("change", syncSecret);
  }

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
    if (!append) { fieldErrors(form, null); }
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
      // After an error nothing more can be loaded for this query: no stale "Load more".
      state.cursor = null;
      more.hidden = true;
      more.disabled = false;
      if (!append) { message(tbody, ""); }
      if (!fieldErrors(form, error)) { problem("logs", error); }
    });
    if (!append) { histogram(params); }
  }

  // --- log volume histogram (sources whose manifest declares supports_histogram) -----------------
  var figure = $("[data-histogram]");
  var histogramSources = (app.dataset.histogramSources || "").split(" ").filter(Boolean);
  function histogram(params) {
    // Only a source that declares a histogram is asked (another answers 501).
    if (histogramSources.indexOf(state.source.logs) < 0) { figure.hidden = true; return; }
    var query = new URLSearchParams(params);
    query.delete("cursor");
    query.delete("limit");
    query.set("buckets", "60");
    api(app.dataset.histogramUrl, query).then(function (body) {
      var svg = $("[data-histogram-bars]");
      while (svg.firstChild) { svg.removeChild(svg.firstChild); }
      var peak = Math.max.apply(null, body.buckets.map(function (b) { return b.count; }).concat([1]));
      var width = 600 / Math.max(body.buckets.length, 1);
      body.buckets.forEach(function (bucket, index) {
        var bar = document.createElementNS("http://www.w3.org/2000/svg", "rect");
        var height = Math.max(bucket.count ? 1 : 0, Math.round(58 * bucket.count / peak));
        bar.setAttribute("x", String(index * width));
        bar.setAttribute("width", String(Math.max(width - 1, 1)));
        bar.setAttribute("y", String(60 - height));
        bar.setAttribute("height", String(height));
        var title = document.createElementNS("http://www.w3.org/2000/svg", "title");
        title.textContent = bucket.count + " from " + when(bucket.start);
        bar.appendChild(title);
        svg.appendChild(bar);
      });
      $("[data-histogram-caption]").textContent = body.total + " entries from " + when(body.start) + " to " + when(body.end);
      figure.hidden = false;
    }).catch(function () { figure.hidden = true; });
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    ready.then(function () { searchLogs(false); }, function (error) { problem("logs", error); });
  });
  more.addEventListener("click", function () { searchLogs(true); });

  // --- start: the sources first, then the configuration; the logs when their tab opens ---------
  var ready = loadSources();
  ready.then(loadConfig, function (error) { problem("configuration", error); });
  var wanted = new URL(location.href).searchParams.get("tab") || (location.hash || "").slice(1);
  if (wanted === "logs" || wanted === "plugins" || wanted === "configuration") { show(wanted); }
})();
