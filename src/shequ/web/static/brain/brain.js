/* 社区大脑 (the brain's big screen): the 3D map (MapLibre GL), the charts (ECharts), the live
   stream (/brain/stream, server-sent events), drill-down, replay and command actions.
   No inline script or style attribute anywhere (the CSP forbids them): every element is built
   with the DOM, styles are set through CSSOM, the words come in the body's data-words. */
(function () {
  "use strict";

  var body = document.body;
  var WORDS = JSON.parse(body.getAttribute("data-words") || "{}");
  var LANG = body.getAttribute("data-lang") || "zh-CN";
  var MAY_DISPATCH = body.getAttribute("data-may-dispatch") === "1";
  var TZ_OFFSET_MS = 8 * 3600 * 1000; // Asia/Shanghai has no daylight saving
  var STATE_COLOURS = {
    alarm: "#ff3b3b", fault: "#ff9f1a", offline: "#8a94a6", maintenance: "#c58cff", ok: "#2fd07a",
    unknown: "#5d7290"
  };
  var SEVERITY_COLOURS = {
    CRITICAL: "#ff2d2d", MAJOR: "#ff8a00", MINOR: "#ffd23f", WARNING: "#4fc3ff", INDETERMINATE: "#9aa7bb"
  };
  var STAGE_COLOURS = {
    reported: "#4fc3ff", registered: "#3fb5ff", dispatched: "#ff9f1a", handled: "#ffd23f",
    fed_back: "#c58cff", verified: "#7fd1ff", closed: "#2fd07a", evaluated: "#1fae62", void: "#8a94a6"
  };
  var ZH = LANG.indexOf("zh") === 0;
  var CONDITION_ORDER = ["alarm", "fault", "offline", "maintenance", "ok", "unknown"];
  var LIST_DEVICES = 60;
  var KIND_ZOOM = { grid: 15.2, committee: 15.8, compound: 16.8, building: 17.6, unit: 18, floor: 18.3, room: 18.6 };

  var view = {
    at: null,          // the replayed moment (epoch ms), null while live
    day: null,         // "YYYY-MM-DD" when a day was chosen for the slider
    placeId: null,     // the place the drill panel shows
    twin: null,        // the last building-state mark seen in a summary
    alarms: [],
    cases: [],
    areas: null,
    initialAlarms: true
  };

  // --- small helpers -----------------------------------------------------------------------

  function w(key, vars) {
    var text = WORDS[key] || key;
    if (vars) {
      Object.keys(vars).forEach(function (k) { text = text.split("{" + k + "}").join(String(vars[k])); });
    }
    return text;
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) { throw new Error(url + ": " + r.status); }
      return r.json();
    });
  }

  function postJSON(url, data) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify(data)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (b) { return { status: r.status, body: b }; });
    });
  }

  function atQuery(prefix) {
    return view.at === null ? "" : (prefix || "?") + "at=" + view.at;
  }

  function localTime(ms, withDate) {
    var opts = { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", hour12: false };
    if (withDate) { opts.year = "numeric"; opts.month = "2-digit"; opts.day = "2-digit"; }
    return new Intl.DateTimeFormat(LANG, opts).format(new Date(ms));
  }

  function stateBadge(st) {
    return el("span", "state state-" + (st || "unknown"), w("brain.state." + (st || "unknown")));
  }

  function showErrors(form, errors) {
    form.querySelectorAll("[data-error-for]").forEach(function (p) { p.textContent = ""; });
    (errors || []).forEach(function (e) {
      var slot = form.querySelector('[data-error-for="' + e.field + '"]');
      if (slot) { slot.textContent = e.message; }
    });
  }

  // --- the clock ---------------------------------------------------------------------------

  var clock = document.getElementById("brain-clock");
  function tick() {
    clock.textContent = new Intl.DateTimeFormat(LANG, {
      timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false
    }).format(new Date());
  }
  tick();
  window.setInterval(tick, 1000);

  // --- counters ----------------------------------------------------------------------------

  function setCounter(name, value, suffix) {
    var node = document.querySelector('[data-counter="' + name + '"]');
    if (!node) { return; }
    var text = value === null || value === undefined ? "—" : String(value);
    var before = node.getAttribute("data-value");
    clear(node);
    node.appendChild(document.createTextNode(text));
    if (suffix && text !== "—") { node.appendChild(el("small", null, suffix)); }
    node.setAttribute("data-value", text);
    node.classList.toggle("long", text.length > 5);
    if (before !== null && before !== text) {
      node.classList.remove("bump");
      void node.offsetWidth; // restart the animation
      node.classList.add("bump");
    }
  }

  function applyCounters(s) {
    setCounter("population", s.population.total);
    setCounter("active", s.alarms.active);
    setCounter("unacked", s.alarms.unacknowledged);
    setCounter("today", s.alarms.today);
    setCounter("open", s.cases.open);
    setCounter("overdue", s.cases.overdue);
    setCounter("online", s.devices.online, "/" + s.devices.total);
    setCounter("rate", s.on_time.rate === null ? null : Math.round(s.on_time.rate * 100), "%");
  }

  function applyTiles(s) {
    var box = document.getElementById("scenario-tiles");
    if (!box || !s.scenarios) { return; }
    clear(box);
    s.scenarios.forEach(function (tile) {
      var a = el("a", "tile" + (tile.alert ? " alert" : ""));
      a.href = tile.link || "#";
      a.setAttribute("data-scenario", tile.id);
      a.appendChild(el("span", "tile-title", tile.title));
      tile.figures.forEach(function (f) {
        var fig = el("span", "tile-fig");
        fig.appendChild(el("b", null, String(f.value)));
        fig.appendChild(document.createTextNode(" " + f.label));
        a.appendChild(fig);
      });
      box.appendChild(a);
    });
  }

  // --- charts ------------------------------------------------------------------------------

  var charts = {};
  var TEXT = { color: "#e8f1ff", fontFamily: "Noto Sans SC, sans-serif", fontSize: 15 };
  var AXIS = {
    axisLine: { lineStyle: { color: "#33557f" } },
    axisLabel: { color: "#b9cde6", fontSize: 14, fontFamily: "Noto Sans SC, sans-serif" },
    splitLine: { lineStyle: { color: "#16304f" } }
  };

  function chart(id) {
    if (!charts[id]) {
      var node = document.getElementById(id);
      if (!node || !window.echarts) { return null; }
      charts[id] = window.echarts.init(node, null, { renderer: "canvas" });
    }
    return charts[id];
  }

  function base(extra) {
    // richText tooltips: ECharts' HTML tooltips would write style attributes (refused by the CSP)
    var option = {
      backgroundColor: "transparent",
      textStyle: TEXT,
      animationDuration: 500,
      tooltip: { renderMode: "richText", backgroundColor: "#0d2241", borderColor: "#3fb5ff",
                 textStyle: { color: "#fff", fontSize: 15 } },
      grid: { left: 8, right: 24, top: 28, bottom: 8, containLabel: true }
    };
    Object.keys(extra).forEach(function (k) { option[k] = extra[k]; });
    return option;
  }

  function axis(extra) {
    var out = JSON.parse(JSON.stringify(AXIS));
    Object.keys(extra || {}).forEach(function (k) { out[k] = extra[k]; });
    return out;
  }

  function setChart(id, option) {
    var c = chart(id);
    if (c) { c.setOption(option, true); }
  }

  function pct(v) { return v === null || v === undefined ? "—" : Math.round(v * 100) + "%"; }

  function applyCharts(s) {
    var p = s.population;
    // symmetric, with room for the labels beyond the longest bar
    var widest = Math.max.apply(null, p.age_sex.M.concat(p.age_sex.F).concat([1]));
    var reach = Math.ceil(widest * 1.35);
    setChart("chart-age-sex", base({
      legend: { data: [w("brain.male"), w("brain.female")], textStyle: TEXT, top: 0, right: 0 },
      tooltip: { renderMode: "richText", trigger: "axis", axisPointer: { type: "shadow" },
                 backgroundColor: "#0d2241", textStyle: { color: "#fff", fontSize: 15 },
                 valueFormatter: function (v) { return Math.abs(v); } },
      xAxis: axis({ type: "value", min: -reach, max: reach,
                    axisLabel: { color: "#b9cde6", showMinLabel: false, showMaxLabel: false,
                                 formatter: function (v) { return Math.abs(v); } } }),
      yAxis: axis({ type: "category", data: p.age_sex.bands, axisTick: { show: false } }),
      series: [
        { name: w("brain.male"), type: "bar", stack: "p", data: p.age_sex.M.map(function (v) { return -v; }),
          itemStyle: { color: "#3fb5ff" }, label: { show: true, position: "left", color: "#cfe8ff",
          formatter: function (x) { return Math.abs(x.value) || ""; } } },
        { name: w("brain.female"), type: "bar", stack: "p", data: p.age_sex.F,
          itemStyle: { color: "#ff6fa8" }, label: { show: true, position: "right", color: "#ffd0e3",
          formatter: function (x) { return x.value || ""; } } }
      ]
    }));
    setChart("chart-residence", base({
      tooltip: { renderMode: "richText", trigger: "item", backgroundColor: "#0d2241", textStyle: { color: "#fff" } },
      color: ["#3fb5ff", "#7fd1ff", "#ffb347"],
      legend: { bottom: 0, left: "center", orient: "vertical", itemWidth: 12, itemHeight: 10,
                textStyle: { color: "#e8f1ff", fontSize: 13 } },
      series: [{ type: "pie", radius: ["30%", "58%"], center: ["50%", "36%"],
                 label: { position: "inside", color: "#001", fontSize: 13, fontWeight: 700, formatter: "{c}" },
                 data: p.residence.map(function (r) { return { name: r.label, value: r.n }; }) }]
    }));
    var special = p.special.slice(0, 8).reverse();
    setChart("chart-special", base({
      xAxis: axis({ type: "value", splitNumber: 2 }),
      yAxis: axis({ type: "category", data: special.map(function (r) { return r.label; }), axisTick: { show: false },
                    axisLabel: { color: "#b9cde6", fontSize: 13, interval: 0, width: 120, overflow: "truncate" } }),
      series: [{ type: "bar", data: special.map(function (r) { return r.n; }), itemStyle: { color: "#ffb347" },
                 label: { show: true, position: "right", color: "#ffe2b8" } }]
    }));
    var types = s.devices.by_type.slice(0, 12).reverse();
    setChart("chart-devices", base({
      legend: { data: [w("brain.online"), w("brain.offline")], textStyle: TEXT, top: 0, right: 0 },
      tooltip: { renderMode: "richText", trigger: "axis", axisPointer: { type: "shadow" },
                 backgroundColor: "#0d2241", textStyle: { color: "#fff" } },
      xAxis: axis({ type: "value" }),
      yAxis: axis({ type: "category", data: types.map(function (r) { return r.label; }), axisTick: { show: false },
                    axisLabel: { color: "#b9cde6", fontSize: 13, interval: 0 } }),
      series: [
        { name: w("brain.online"), type: "bar", stack: "d", itemStyle: { color: STATE_COLOURS.ok },
          data: types.map(function (r) { return r.online; }) },
        { name: w("brain.offline"), type: "bar", stack: "d", itemStyle: { color: STATE_COLOURS.offline },
          data: types.map(function (r) { return r.offline; }),
          label: { show: true, position: "right", color: "#cdd8e8",
                   formatter: function (x) { var r = types[x.dataIndex]; return r.online + "/" + (r.online + r.offline); } } }
      ]
    }));
    var scen = s.alarms.today_by_scenario;
    setChart("chart-alarm-scenarios", base({
      tooltip: { renderMode: "richText", trigger: "item", backgroundColor: "#0d2241", textStyle: { color: "#fff" } },
      color: ["#ff3b3b", "#ff8a00", "#ffd23f", "#4fc3ff", "#c58cff", "#2fd07a", "#7fd1ff"],
      title: scen.length ? undefined : { text: "0", left: "center", top: "middle",
                                          textStyle: { color: "#8fa6c4", fontSize: 40 } },
      series: [{ type: "pie", radius: ["38%", "66%"], center: ["50%", "55%"],
                 label: { color: "#e8f1ff", fontSize: 14, formatter: "{b}\n{c}" },
                 data: scen.map(function (r) { return { name: r.label, value: r.n }; }) }]
    }));
    // 不确定 (indeterminate) only when there is one: five bars would crowd the labels
    var sev = s.alarms.today_by_severity.filter(function (r) { return r.key !== "INDETERMINATE" || r.n; });
    setChart("chart-alarm-severity", base({
      xAxis: axis({ type: "category", data: sev.map(function (r) { return r.label; }), axisTick: { show: false },
                    axisLabel: { color: "#b9cde6", fontSize: 13, interval: 0, rotate: ZH ? 0 : 35 } }),
      yAxis: axis({ type: "value", minInterval: 1, splitNumber: 3 }),
      series: [{ type: "bar", barWidth: "55%", label: { show: true, position: "top", color: "#fff", fontSize: 16 },
                 data: sev.map(function (r) { return { value: r.n, itemStyle: { color: SEVERITY_COLOURS[r.key] } }; }) }]
    }));
    var stages = s.cases.by_stage.filter(function (r) { return r.key !== "void"; });
    setChart("chart-case-stages", base({
      xAxis: axis({ type: "category", data: stages.map(function (r) { return r.label; }), axisTick: { show: false },
                    axisLabel: { color: "#b9cde6", fontSize: 13, interval: 0, rotate: ZH ? 0 : 30 } }),
      yAxis: axis({ type: "value", minInterval: 1, splitNumber: 3 }),
      series: [{ type: "bar", barWidth: "55%", label: { show: true, position: "top", color: "#fff" },
                 data: stages.map(function (r) { return { value: r.n, itemStyle: { color: STAGE_COLOURS[r.key] } }; }) }]
    }));
    onTimeChart("chart-on-time-dept", s.on_time.by_department);
    onTimeChart("chart-on-time-grid", s.on_time.by_grid);
    var tr = s.trends;
    setChart("chart-trends", base({
      legend: { data: [w("brain.alarms"), w("brain.cases")], textStyle: TEXT, top: 0, right: 0 },
      tooltip: { renderMode: "richText", trigger: "axis", backgroundColor: "#0d2241", textStyle: { color: "#fff" } },
      xAxis: axis({ type: "category", boundaryGap: false, data: tr.days.map(function (d) { return d.slice(5); }) }),
      yAxis: axis({ type: "value", minInterval: 1 }),
      series: [
        { name: w("brain.alarms"), type: "line", smooth: true, data: tr.alarms, symbolSize: 7,
          itemStyle: { color: "#ff5a5a" }, areaStyle: { color: "rgba(255,90,90,0.18)" } },
        { name: w("brain.cases"), type: "line", smooth: true, data: tr.cases, symbolSize: 7,
          itemStyle: { color: "#3fb5ff" }, areaStyle: { color: "rgba(63,181,255,0.15)" } }
      ]
    }));
  }

  function onTimeChart(id, rows) {
    var shown = rows.filter(function (r) { return r.rate !== null; }).slice(0, 8).reverse();
    setChart(id, base({
      grid: { left: 8, right: 60, top: 20, bottom: 8, containLabel: true },
      title: shown.length ? undefined : { text: "—", left: "center", top: "middle",
                                           textStyle: { color: "#8fa6c4", fontSize: 40 } },
      xAxis: axis({ type: "value", max: 100, splitNumber: 4, axisLabel: { color: "#b9cde6", formatter: "{value}%" } }),
      yAxis: axis({ type: "category", data: shown.map(function (r) { return r.label; }), axisTick: { show: false } }),
      series: [{ type: "bar", barWidth: "55%",
                 data: shown.map(function (r) {
                   var v = Math.round(r.rate * 1000) / 10;
                   return { value: v, itemStyle: { color: v >= 90 ? "#2fd07a" : v >= 70 ? "#ffd23f" : "#ff5a5a" } };
                 }),
                 label: { show: true, position: "right", color: "#fff", formatter: "{c}%" } }]
    }));
  }

  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (k) { charts[k].resize(); });
  });

  // --- the map -----------------------------------------------------------------------------

  var mapEl = document.getElementById("brain-map");
  var mapWrap = mapEl.parentNode;
  var map = null;
  var mapReady = false;
  var alarmMarkers = {};
  var labelMarkers = [];
  var EMPTY = { type: "FeatureCollection", features: [] };

  function centreOf() {
    var raw = (mapEl.getAttribute("data-centre") || "").split(",");
    if (raw.length === 2 && raw[0] !== "") { return [parseFloat(raw[0]), parseFloat(raw[1])]; }
    return [121.4737, 31.2304];
  }

  function boundsOf(features) {
    var b = null;
    function add(c) {
      if (typeof c[0] === "number") {
        if (!b) { b = [c[0], c[1], c[0], c[1]]; return; }
        b[0] = Math.min(b[0], c[0]); b[1] = Math.min(b[1], c[1]);
        b[2] = Math.max(b[2], c[0]); b[3] = Math.max(b[3], c[1]);
      } else { c.forEach(add); }
    }
    features.forEach(function (f) { if (f.geometry) { add(f.geometry.coordinates); } });
    return b;
  }

  function stateColour() {
    var expr = ["match", ["get", "state"]];
    Object.keys(STATE_COLOURS).forEach(function (k) { expr.push(k, STATE_COLOURS[k]); });
    expr.push(STATE_COLOURS.unknown);
    return expr;
  }

  function initMap() {
    if (!window.maplibregl) { return; }
    window.maplibregl.setWorkerUrl("/static/vendor/maplibre-gl-csp-worker.js");
    map = new window.maplibregl.Map({
      container: mapEl,
      style: { version: 8, sources: {}, layers: [
        { id: "background", type: "background", paint: { "background-color": "#07111f" } }] },
      center: centreOf(), zoom: 15, pitch: 50, bearing: -18, maxPitch: 70,
      attributionControl: false, fadeDuration: 0
    });
    map.on("load", function () {
      map.addSource("areas", { type: "geojson", data: EMPTY });
      map.addSource("buildings", { type: "geojson", data: EMPTY });
      map.addSource("devices", { type: "geojson", data: EMPTY });
      map.addSource("selected", { type: "geojson", data: EMPTY });
      var polygon = ["==", ["geometry-type"], "Polygon"];
      map.addLayer({ id: "areas-fill", type: "fill", source: "areas", filter: polygon, paint: {
        "fill-color": ["match", ["get", "kind"], "grid", "#0f3a66", "committee", "#124a7d", "#1b2f4a"],
        "fill-opacity": ["match", ["get", "kind"], "grid", 0.25, "committee", 0.18, 0.3] } });
      map.addLayer({ id: "areas-line", type: "line", source: "areas", filter: polygon, paint: {
        "line-color": ["match", ["get", "kind"], "grid", "#3fb5ff", "committee", "#7fd1ff", "#4a6a90"],
        "line-width": ["match", ["get", "kind"], "grid", 3, "committee", 2, 1],
        "line-opacity": 0.9 } });
      map.addLayer({ id: "selected-line", type: "line", source: "selected", paint: {
        "line-color": "#ffffff", "line-width": 4 } });
      map.addLayer({ id: "buildings-3d", type: "fill-extrusion", source: "buildings", filter: polygon, paint: {
        "fill-extrusion-color": stateColour(),
        "fill-extrusion-height": ["coalesce", ["get", "height_m"], 9],
        "fill-extrusion-base": 0,
        "fill-extrusion-opacity": 0.88 } });
      map.addLayer({ id: "buildings-pt", type: "circle", source: "buildings", filter: ["==", ["geometry-type"], "Point"],
        paint: { "circle-color": stateColour(), "circle-radius": 7, "circle-stroke-color": "#fff",
                 "circle-stroke-width": 1 } });
      map.addLayer({ id: "devices", type: "circle", source: "devices", paint: {
        "circle-color": ["match", ["get", "condition"], "alarm", STATE_COLOURS.alarm, "fault", STATE_COLOURS.fault,
                         "offline", STATE_COLOURS.offline, "maintenance", STATE_COLOURS.maintenance,
                         "ok", STATE_COLOURS.ok, "#5b6f8c"],
        "circle-radius": 5, "circle-stroke-color": "#001", "circle-stroke-width": 1 } });
      ["buildings-3d", "buildings-pt"].forEach(function (layer) {
        map.on("click", layer, function (e) {
          if (e.features && e.features.length) { drill(Number(e.features[0].properties.id)); }
        });
        map.on("mouseenter", layer, function () { map.getCanvas().style.cursor = "pointer"; });
        map.on("mouseleave", layer, function () { map.getCanvas().style.cursor = ""; });
      });
      map.on("zoom", labelVisibility);
      mapReady = true;
      loadAreas();
      loadBuildings(true);
      renderAlarmMarkers();
    });
  }

  function loadBuildings(fit) {
    if (!mapReady) { return; }
    getJSON("/brain/data/buildings.geojson" + atQuery()).then(function (layer) {
      map.getSource("buildings").setData(layer);
      if (fit) {
        var b = boundsOf(layer.features);
        if (b) {
          map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: { top: 70, bottom: 80, left: 40, right: 40 },
                                                         pitch: 50, bearing: -18, duration: 0 });
        }
      }
      map.once("idle", function () { mapEl.setAttribute("data-buildings", String(layer.features.length)); });
      map.triggerRepaint();
    }).catch(function () { mapEl.setAttribute("data-buildings", "error"); });
  }

  function loadAreas() {
    getJSON("/brain/data/areas.geojson").then(function (layer) {
      view.areas = layer;
      map.getSource("areas").setData(layer);
      labelMarkers.forEach(function (m) { m.remove(); });
      labelMarkers = [];
      layer.features.forEach(function (f) {
        var p = f.properties;
        if (p.lon === null || p.lat === null) { return; }
        var node = el("div", "map-label kind-" + p.kind, p.name);
        labelMarkers.push(new window.maplibregl.Marker({ element: node }).setLngLat([p.lon, p.lat]).addTo(map));
      });
      labelVisibility();
    }).catch(function () { /* the map stays without outlines */ });
  }

  function labelVisibility() {
    if (!map) { return; }
    var z = map.getZoom();
    var committees = labelMarkers.filter(function (m) {
      return m.getElement().classList.contains("kind-committee");
    }).length;
    // a few names at a time: grids far out, committees nearer (all of them when there are few)
    labelMarkers.forEach(function (m) {
      var node = m.getElement();
      if (node.classList.contains("kind-grid")) { node.hidden = z > 16.5; }
      else if (node.classList.contains("kind-committee")) { node.hidden = z < 15.4 && committees > 12; }
      else { node.hidden = z < 16.5; }
    });
  }

  // --- alarms: markers and the list ---------------------------------------------------------

  function renderAlarmMarkers() {
    if (!mapReady) { return; }
    var seen = {};
    view.alarms.forEach(function (a) {
      if (a.lon === null || a.lat === null) { return; }
      seen[a.id] = true;
      var marker = alarmMarkers[a.id];
      if (!marker) {
        var node = el("div", "brain-alarm sev-" + a.severity + (view.initialAlarms ? "" : " fresh"));
        node.setAttribute("data-alarm-id", String(a.id));
        node.setAttribute("role", "button");
        node.setAttribute("tabindex", "0");
        node.title = a.title;
        node.addEventListener("click", function (evt) { evt.stopPropagation(); showAlarm(a.id); });
        marker = new window.maplibregl.Marker({ element: node }).setLngLat([a.lon, a.lat]).addTo(map);
        alarmMarkers[a.id] = marker;
      } else {
        var n = marker.getElement();
        n.className = n.className.replace(/sev-\w+/, "sev-" + a.severity);
      }
    });
    Object.keys(alarmMarkers).forEach(function (id) {
      if (!seen[id]) { alarmMarkers[id].remove(); delete alarmMarkers[id]; }
    });
    view.initialAlarms = false;
  }

  function renderAlarmList() {
    var list = document.getElementById("alarm-list");
    clear(list);
    if (!view.alarms.length) { list.appendChild(el("li", "empty", w("brain.no_alarms"))); return; }
    view.alarms.forEach(function (a) {
      var li = el("li");
      li.setAttribute("data-alarm-id", String(a.id));
      li.appendChild(el("span", "sev sev-" + a.severity, a.severity_label));
      li.appendChild(el("span", "title", a.title));
      li.appendChild(el("span", "when", a.raised_local));
      li.addEventListener("click", function () { showAlarm(a.id); });
      list.appendChild(li);
    });
  }

  function applyAlarms(items) {
    view.alarms = items;
    renderAlarmList();
    renderAlarmMarkers();
  }

  // --- cases: the command list ---------------------------------------------------------------

  function loadCases() {
    return getJSON("/brain/data/cases").then(function (data) {
      view.cases = data.items;
      var list = document.getElementById("case-list");
      clear(list);
      if (!view.cases.length) { list.appendChild(el("li", "empty", w("brain.no_cases"))); return; }
      view.cases.forEach(function (c) {
        var li = el("li", c.overdue ? "overdue" : "");
        li.setAttribute("data-case-id", String(c.id));
        li.appendChild(el("span", "stage", c.stage_label));
        li.appendChild(el("span", "title", c.title));
        li.appendChild(el("span", "when", c.due_local));
        li.addEventListener("click", function () { showCase(c); });
        list.appendChild(li);
      });
    }).catch(function () { /* the list keeps what it had */ });
  }

  // --- the drill panel -----------------------------------------------------------------------

  var drillBox = document.getElementById("drill");
  var drillBody = document.getElementById("drill-body");
  var crumbs = document.getElementById("crumbs");
  document.getElementById("drill-close").addEventListener("click", function () {
    drillBox.hidden = true;
    view.placeId = null;
  });

  function openPanel() {
    clear(drillBody);
    drillBody.removeAttribute("data-place-id");
    drillBody.removeAttribute("data-alarm-id");
    drillBox.hidden = false;
    drillBox.scrollTop = 0;
    return drillBody;
  }

  function setCrumbs(chain) {
    clear(crumbs);
    var all = [{ id: null, name: w("brain.subdistrict") }].concat(chain || []);
    all.forEach(function (c, i) {
      if (i) { crumbs.appendChild(el("span", "sep", "›")); }
      var b = el("button", null, c.name);
      b.type = "button";
      if (i === all.length - 1) { b.setAttribute("aria-current", "true"); }
      b.addEventListener("click", function () { drill(c.id); });
      crumbs.appendChild(b);
    });
  }

  function setDevices(devices) {
    if (!mapReady) { return; }
    map.getSource("devices").setData({ type: "FeatureCollection", features: (devices || []).filter(function (d) {
      return d.lon !== null && d.lat !== null;
    }).map(function (d) {
      return { type: "Feature", geometry: { type: "Point", coordinates: [d.lon, d.lat] },
               properties: { id: d.id, condition: d.condition } };
    }) });
  }

  function select(geometry) {
    if (!mapReady) { return; }
    map.getSource("selected").setData(geometry ? { type: "Feature", geometry: geometry, properties: {} } : EMPTY);
  }

  function flyTo(p) {
    if (!mapReady) { return; }
    var zoom = KIND_ZOOM[p.kind] || 16;
    if (p.geometry && p.geometry.type === "Polygon" && (p.kind === "grid" || p.kind === "committee" || p.kind === "compound")) {
      var b = boundsOf([{ geometry: p.geometry }]);
      map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: { top: 70, bottom: 80, left: 40, right: 460 },
                                                     pitch: 50, duration: 900 });
    } else if (p.lon !== null && p.lat !== null) {
      map.flyTo({ center: [p.lon, p.lat], zoom: zoom, pitch: 55, duration: 900,
                  padding: { top: 0, bottom: 0, left: 0, right: 420 } });
    }
  }

  function drill(placeId) {
    view.placeId = placeId;
    if (placeId === null || placeId === undefined) { showRoot(); return; }
    getJSON("/brain/data/places/" + placeId + atQuery()).then(renderPlace).catch(function () {
      var box = openPanel();
      box.appendChild(el("p", null, w("brain.failed")));
    });
  }

  function showRoot() {
    setCrumbs([]);
    setDevices([]);
    select(null);
    var box = openPanel();
    box.appendChild(el("h3", null, w("brain.subdistrict")));
    var feats = (view.areas ? view.areas.features : []).filter(function (f) { return f.properties.kind !== "compound"; });
    var ul = el("ul");
    feats.forEach(function (f) {
      var p = f.properties;
      var li = el("li");
      li.appendChild(stateBadge(p.state));
      var b = el("button", "link", p.kind_label + " · " + p.name);
      b.type = "button";
      b.addEventListener("click", function () { drill(p.id); });
      li.appendChild(b);
      ul.appendChild(li);
    });
    box.appendChild(ul);
    if (mapReady) { loadBuildings(true); }
  }

  function attrsText(attrs) {
    return Object.keys(attrs || {}).map(function (k) { return k + "=" + JSON.stringify(attrs[k]); }).join(" · ");
  }

  function renderPlace(p) {
    setCrumbs(p.breadcrumbs.concat([{ id: p.id, name: p.name }]));
    var box = openPanel();
    box.setAttribute("data-place-id", String(p.id));
    var h = el("h3", null, p.name);
    box.appendChild(h);
    var kind = el("div", "kind");
    kind.appendChild(stateBadge(p.state));
    kind.appendChild(document.createTextNode(p.kind_label + (p.address ? " · " + p.address : "") +
      (view.at !== null ? " · " + w("brain.at", { at: localTime(view.at, true) }) : "")));
    box.appendChild(kind);
    var stats = el("div", "stats");
    ["alarm", "fault", "offline", "maintenance", "ok", "unknown"].forEach(function (k) {
      if (p.counts[k]) { stats.appendChild(el("span", null, w("brain.state." + k) + " " + p.counts[k])); }
    });
    stats.appendChild(el("span", null, w("brain.devices") + " " + p.counts.devices));
    box.appendChild(stats);

    if (p.alarms && p.alarms.length) {
      box.appendChild(el("h4", null, w("brain.alarm_list")));
      var al = el("ul");
      p.alarms.forEach(function (a) {
        var li = el("li");
        li.appendChild(el("span", "sev sev-" + a.severity, a.severity_label));
        var b = el("button", "link", " " + a.title);
        b.type = "button";
        b.addEventListener("click", function () { showAlarm(a.id); });
        li.appendChild(b);
        al.appendChild(li);
      });
      box.appendChild(al);
    }
    if (p.children && p.children.length) {
      box.appendChild(el("h4", null, w("brain.children")));
      var ul = el("ul");
      p.children.forEach(function (c) {
        var li = el("li");
        li.setAttribute("data-child-id", String(c.id));
        li.appendChild(stateBadge(c.state));
        var b = el("button", "link", c.name + (c.counts && c.counts.devices ? " (" + c.counts.devices + ")" : ""));
        b.type = "button";
        b.addEventListener("click", function () { drill(c.id); });
        li.appendChild(b);
        ul.appendChild(li);
      });
      box.appendChild(ul);
    }
    box.appendChild(el("h4", null, w("brain.devices")));
    if (!p.devices.length) {
      box.appendChild(el("p", "kind", w("brain.no_devices")));
    } else {
      // the worst first; the map shows them all, the list the first LIST_DEVICES
      var shown = p.devices.slice().sort(function (a, b) {
        return CONDITION_ORDER.indexOf(a.condition) - CONDITION_ORDER.indexOf(b.condition);
      }).slice(0, LIST_DEVICES);
      var dl = el("ul");
      shown.forEach(function (d) {
        var li = el("li");
        li.setAttribute("data-device-id", String(d.id));
        li.appendChild(stateBadge(d.condition));
        li.appendChild(document.createTextNode(d.type_label + " · " + d.name));
        var attrs = attrsText(d.attrs);
        if (attrs || d.ts) {
          li.appendChild(el("div", "attrs", (d.ts ? localTime(d.ts, true) + " · " : "") + attrs));
        }
        dl.appendChild(li);
      });
      box.appendChild(dl);
      if (p.devices_total > shown.length) {
        box.appendChild(el("p", "kind", w("brain.devices_more", { n: p.devices_total - shown.length })));
      }
    }
    setDevices(p.kind === "grid" || p.kind === "committee" ? [] : p.devices);
    select(p.kind === "building" ? p.geometry : null);
    if (p.kind === "floor" || p.kind === "room" || p.kind === "unit") {
      var building = p.breadcrumbs.filter(function (c) { return c.kind === "building"; })[0];
      var feature = building && buildingFeature(building.id);
      select(feature ? feature.geometry : null);
    }
    flyTo(p);
  }

  function buildingFeature(id) {
    if (!mapReady) { return null; }
    var found = map.querySourceFeatures("buildings", { filter: ["==", ["get", "id"], id] });
    return found.length ? found[0] : null;
  }

  function showAlarm(id) {
    var a = view.alarms.filter(function (x) { return x.id === id; })[0];
    if (!a) { return; }
    view.placeId = null; // the panel shows an alarm now: no place to reload
    var box = openPanel();
    box.setAttribute("data-alarm-id", String(a.id));
    box.appendChild(el("h3", null, a.title));
    var kind = el("div", "kind");
    kind.appendChild(el("span", "sev sev-" + a.severity, a.severity_label));
    kind.appendChild(document.createTextNode(" " + a.raised_local + " · " + w("brain.count") + " " + a.count));
    box.appendChild(kind);
    if (a.where && a.title.indexOf(a.where) < 0) { box.appendChild(el("p", null, a.where)); }
    var actions = el("div", "commands");
    if (a.place_id) {
      var go = el("button", "brain-btn", w("brain.locate"));
      go.type = "button";
      go.setAttribute("data-locate", String(a.place_id));
      go.addEventListener("click", function () { drill(a.place_id); });
      actions.appendChild(go);
    }
    var open = el("a", "brain-btn", w("brain.open_detail"));
    open.href = "/alarms/" + a.id;
    actions.appendChild(open);
    box.appendChild(actions);
    if (a.case_id) {
      box.appendChild(el("h4", null, w("brain.case_of_alarm")));
      getJSON("/brain/data/cases/" + a.case_id).then(function (c) { caseCommands(box, c); }).catch(function () {
        var link = el("a", null, "#" + a.case_id);
        link.href = "/cases/" + a.case_id;
        box.appendChild(link);
      });
    }
    if (mapReady && a.lon !== null) {
      map.flyTo({ center: [a.lon, a.lat], zoom: 17.6, pitch: 55, duration: 900,
                  padding: { top: 0, bottom: 0, left: 0, right: 420 } });
    }
  }

  function showCase(c) {
    view.placeId = null;
    var box = openPanel();
    box.appendChild(el("h3", null, c.title));
    caseCommands(box, c);
    if (mapReady && c.lon !== null && c.lat !== null) {
      map.flyTo({ center: [c.lon, c.lat], zoom: 17.2, pitch: 55, duration: 900,
                  padding: { top: 0, bottom: 0, left: 0, right: 420 } });
    }
  }

  function caseCommands(box, c) {
    var holder = el("div", "case-box");
    holder.setAttribute("data-case-id", String(c.id));
    var kind = el("div", "kind", c.code + " · " + c.stage_label + (c.department ? " · " + c.department : ""));
    holder.appendChild(kind);
    var facts = el("div", "stats");
    if (c.due_local) { facts.appendChild(el("span", null, w("brain.due") + " " + c.due_local)); }
    if (c.escalation_level) { facts.appendChild(el("span", null, w("brain.level", { n: c.escalation_level }))); }
    if (c.supervised) { facts.appendChild(el("span", null, w("brain.supervise"))); }
    if (c.overdue) { facts.appendChild(el("span", "state state-alarm", w("brain.late"))); }
    holder.appendChild(facts);
    var result = el("p", "command-result");
    result.setAttribute("role", "status");
    if (MAY_DISPATCH && c.actions.indexOf("dispatch") >= 0) {
      var form = document.getElementById("dispatch-form").content.firstElementChild.cloneNode(true);
      if (c.department) { form.querySelector("select").value = c.department; }
      form.addEventListener("submit", function (evt) {
        evt.preventDefault();
        command(c, "dispatch", { department: form.querySelector("select").value }, form, result, holder);
      });
      holder.appendChild(form);
    }
    var buttons = el("div", "commands");
    ["escalate", "supervise"].forEach(function (action) {
      if (c.actions.indexOf(action) < 0) { return; }
      var b = el("button", "brain-btn" + (action === "escalate" ? " danger" : ""), w("brain." + action));
      b.type = "button";
      b.setAttribute("data-command", action);
      b.addEventListener("click", function () { command(c, action, {}, null, result, holder); });
      buttons.appendChild(b);
    });
    var open = el("a", "brain-btn", w("brain.open_detail"));
    open.href = "/cases/" + c.id;
    buttons.appendChild(open);
    holder.appendChild(buttons);
    holder.appendChild(result);
    box.appendChild(holder);
  }

  function command(c, action, data, form, result, holder) {
    result.className = "command-result";
    result.textContent = w("brain.loading");
    postJSON("/brain/actions/cases/" + c.id + "/" + action, data).then(function (r) {
      if (form) { showErrors(form, r.status === 422 ? r.body.errors : []); }
      if (r.status === 200) {
        var box = holder.parentNode;
        holder.remove();
        caseCommands(box, r.body.case);
        var fresh = box.querySelector(".command-result");
        fresh.textContent = w("brain.done") + " · " + w("brain." + action);
        loadCases();
      } else {
        result.className = "command-result bad";
        result.textContent = (r.body.errors && r.body.errors.length ? r.body.errors[0].message : r.body.detail) || String(r.status);
      }
    }).catch(function () {
      result.className = "command-result bad";
      result.textContent = w("brain.failed");
    });
  }

  // --- replay: the time slider -----------------------------------------------------------------

  var slider = document.getElementById("time-slider");
  var dayInput = document.getElementById("time-day");
  var liveButton = document.getElementById("time-live");
  var timeLabel = document.getElementById("time-label");
  var modeBox = document.getElementById("brain-mode");
  var modeText = document.getElementById("brain-mode-text");
  var sliderTimer = null;

  function todayLocal() {
    return new Date(Date.now() + TZ_OFFSET_MS).toISOString().slice(0, 10);
  }
  dayInput.max = todayLocal();

  function sliderMoment() {
    var minutes = Number(slider.value);
    if (view.day) {
      var parts = view.day.split("-").map(Number);
      return Date.UTC(parts[0], parts[1] - 1, parts[2]) - TZ_OFFSET_MS + minutes * 60000;
    }
    return minutes === 0 ? null : Date.now() + minutes * 60000;
  }

  function setMoment(ms) {
    if (ms !== null && ms >= Date.now()) { ms = null; }
    view.at = ms;
    var live = ms === null;
    modeBox.setAttribute("data-mode", live ? "live" : "replay");
    modeText.textContent = live ? w("brain.live") : w("brain.replay");
    mapWrap.classList.toggle("replay", !live);
    liveButton.disabled = live;
    timeLabel.textContent = live ? w("brain.live") : localTime(ms, true);
    loadBuildings(false);
    if (!drillBox.hidden && view.placeId !== null) { drill(view.placeId); }
  }

  slider.addEventListener("input", function () {
    var ms = sliderMoment();
    timeLabel.textContent = ms === null ? w("brain.live") : localTime(ms, true);
    window.clearTimeout(sliderTimer);
    sliderTimer = window.setTimeout(function () { setMoment(sliderMoment()); }, 250);
  });

  dayInput.addEventListener("change", function () {
    if (!dayInput.value) { goLive(); return; }
    view.day = dayInput.value;
    slider.min = "0";
    slider.max = "1430";
    slider.value = "720";
    setMoment(sliderMoment());
  });

  function goLive() {
    view.day = null;
    dayInput.value = "";
    slider.min = "-1440";
    slider.max = "0";
    slider.value = "0";
    setMoment(null);
  }
  liveButton.addEventListener("click", goLive);

  // --- the notice dialog -----------------------------------------------------------------------

  var dialog = document.getElementById("notice-dialog");
  if (dialog) {
    var noticeForm = document.getElementById("notice-form");
    var noticeResult = document.getElementById("notice-result");
    document.getElementById("notice-open").addEventListener("click", function () {
      showErrors(noticeForm, []);
      noticeResult.textContent = "";
      dialog.showModal();
    });
    document.getElementById("notice-cancel").addEventListener("click", function () { dialog.close(); });
    noticeForm.addEventListener("submit", function (evt) {
      evt.preventDefault();
      var data = {};
      ["title", "body", "audience", "committee_id"].forEach(function (k) { data[k] = noticeForm.elements[k].value; });
      postJSON("/brain/actions/notices", data).then(function (r) {
        showErrors(noticeForm, r.status === 422 ? r.body.errors : []);
        if (r.status === 200) {
          noticeResult.textContent = w("brain.sent", { n: r.body.notice.recipients });
          noticeForm.reset();
          window.setTimeout(function () { dialog.close(); }, 1500);
        } else if (r.status !== 422) {
          noticeResult.textContent = r.body.detail || String(r.status);
        }
      });
    });
  }

  // --- live: the stream ------------------------------------------------------------------------

  function applySummary(s) {
    if (!s) { return; }
    applyCounters(s);
    applyTiles(s);
    applyCharts(s);
    if (view.twin !== null && s.twin !== view.twin && view.at === null) {
      loadBuildings(false);
      if (!drillBox.hidden && view.placeId !== null) { drill(view.placeId); }
    }
    view.twin = s.twin;
  }

  function connect() {
    if (!window.EventSource) { return; }
    var source = new EventSource("/brain/stream");
    source.addEventListener("summary", function (evt) {
      try { applySummary(JSON.parse(evt.data)); } catch (e) { /* a broken frame: the next one comes */ }
    });
    source.addEventListener("alarms", function (evt) {
      var data;
      try { data = JSON.parse(evt.data); } catch (e) { return; }
      applyAlarms(data.items);
      loadCases();
    });
    source.addEventListener("open", function () {
      if (view.at === null) { modeBox.setAttribute("data-mode", "live"); }
    });
    source.addEventListener("error", function () {
      if (view.at === null) { modeBox.setAttribute("data-mode", "offline"); }
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // --- start -----------------------------------------------------------------------------------

  setCrumbs([]);
  initMap();
  // the numbers the page was rendered with come in the body's data-summary; the stream follows
  try { applySummary(JSON.parse(body.getAttribute("data-summary") || "null")); } catch (e) { /* the stream sends it */ }
  getJSON("/brain/data/alarms").then(function (d) { applyAlarms(d.items); }).catch(function () {});
  loadCases();
  connect();
})();
