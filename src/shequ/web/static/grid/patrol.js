/* 巡查上报: a MapLibre map of the buildings in the user's scope (offline: a plain background and
   the GeoJSON layer, no tiles, no glyphs). A click, or "use my position", sets the lon/lat
   inputs, puts a marker there and names the nearest building. */
(function () {
  "use strict";

  var box = document.getElementById("patrol-map");
  if (!box) { return; }
  var lonInput = document.getElementById("patrol-lon");
  var latInput = document.getElementById("patrol-lat");
  var pointText = document.getElementById("point-text");
  var nearestText = document.getElementById("nearest-text");
  var positionButton = document.querySelector("[data-my-position]");
  var NEAREST_M = 150;
  var buildings = [];  // {name, lon, lat}
  var map = null;
  var marker = null;

  function text(name) { return box.getAttribute("data-text-" + name) || ""; }

  function webglAvailable() {
    try {
      var canvas = document.createElement("canvas");
      return !!(canvas.getContext("webgl2") || canvas.getContext("webgl"));
    } catch (e) {
      return false;
    }
  }

  function metres(lon1, lat1, lon2, lat2) {
    var rad = Math.PI / 180;
    var x = (lon2 - lon1) * rad * Math.cos((lat1 + lat2) / 2 * rad);
    var y = (lat2 - lat1) * rad;
    return 6371000 * Math.sqrt(x * x + y * y);
  }

  function centre(geometry) {
    if (!geometry) { return null; }
    if (geometry.type === "Point") { return geometry.coordinates; }
    var ring = geometry.type === "Polygon" ? geometry.coordinates[0]
      : geometry.type === "MultiPolygon" ? geometry.coordinates[0][0] : null;
    if (!ring || !ring.length) { return null; }
    var sx = 0, sy = 0;
    ring.forEach(function (p) { sx += p[0]; sy += p[1]; });
    return [sx / ring.length, sy / ring.length];
  }

  function nearest(lon, lat) {
    var best = null;
    buildings.forEach(function (b) {
      var d = metres(lon, lat, b.lon, b.lat);
      if (d <= NEAREST_M && (!best || d < best.d)) { best = {name: b.name, d: d}; }
    });
    return best;
  }

  function setPoint(lon, lat) {
    lonInput.value = lon.toFixed(6);
    latInput.value = lat.toFixed(6);
    pointText.textContent = text("point-at") + "：" + lonInput.value + ", " + latInput.value;
    var near = nearest(lon, lat);
    nearestText.textContent = near ? text("nearest") + "：" + near.name + "（" + Math.round(near.d) + " m）" : "";
    if (map) {
      if (!marker) {
        var el = document.createElement("div");
        el.className = "map-marker";
        marker = new window.maplibregl.Marker({element: el});
      }
      marker.setLngLat([lon, lat]).addTo(map);
    }
    box.setAttribute("data-point", lonInput.value + "," + latInput.value);
  }

  if (positionButton) {
    positionButton.addEventListener("click", function () {
      if (!navigator.geolocation) { pointText.textContent = text("no-position"); return; }
      navigator.geolocation.getCurrentPosition(function (pos) {
        setPoint(pos.coords.longitude, pos.coords.latitude);
        if (map) { map.easeTo({center: [pos.coords.longitude, pos.coords.latitude]}); }
      }, function () {
        pointText.textContent = text("no-position");
      }, {enableHighAccuracy: true, timeout: 10000, maximumAge: 60000});
    });
  }

  if (!window.maplibregl || !webglAvailable()) {
    box.classList.add("no-map");
    box.textContent = text("no-map");
    return;
  }

  window.maplibregl.setWorkerUrl("/static/vendor/maplibre-gl-csp-worker.js");
  var raw = (box.getAttribute("data-bounds") || "").split(",").map(Number);
  var bounded = raw.length === 4 && raw.every(function (n) { return isFinite(n); });
  var options = {
    container: box,
    style: {version: 8, sources: {}, layers: [
      {id: "background", type: "background", paint: {"background-color": "#eef1f4"}}]},
    attributionControl: false,
    dragRotate: false,
    pitchWithRotate: false
  };
  if (bounded) {
    options.bounds = [[raw[0], raw[1]], [raw[2], raw[3]]];
    options.fitBoundsOptions = {padding: 12};
  } else {
    options.center = [121.41, 31.01];
    options.zoom = 14;
  }
  map = new window.maplibregl.Map(options);
  map.addControl(new window.maplibregl.NavigationControl({showCompass: false}), "top-right");

  map.on("load", function () {
    fetch(box.getAttribute("data-buildings"), {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : {type: "FeatureCollection", features: []}; })
      .then(function (data) {
        data.features = (data.features || []).filter(function (f) { return f.geometry; });
        data.features.forEach(function (f) {
          var c = centre(f.geometry);
          if (c) { buildings.push({name: (f.properties && f.properties.name) || "", lon: c[0], lat: c[1]}); }
        });
        map.addSource("buildings", {type: "geojson", data: data});
        map.addLayer({id: "buildings-fill", type: "fill", source: "buildings",
                      filter: ["!=", ["geometry-type"], "Point"],
                      paint: {"fill-color": "#c4cfdc", "fill-opacity": 0.9}});
        map.addLayer({id: "buildings-line", type: "line", source: "buildings",
                      filter: ["!=", ["geometry-type"], "Point"],
                      paint: {"line-color": "#7d8ca0", "line-width": 1}});
        map.addLayer({id: "buildings-point", type: "circle", source: "buildings",
                      filter: ["==", ["geometry-type"], "Point"],
                      paint: {"circle-radius": 4, "circle-color": "#7d8ca0"}});
        box.setAttribute("data-ready", String(buildings.length));
      })
      .catch(function () { box.setAttribute("data-ready", "0"); });
    var lon = parseFloat(lonInput.value), lat = parseFloat(latInput.value);
    if (isFinite(lon) && isFinite(lat)) { setPoint(lon, lat); }
  });

  map.on("click", function (evt) { setPoint(evt.lngLat.lng, evt.lngLat.lat); });
})();
