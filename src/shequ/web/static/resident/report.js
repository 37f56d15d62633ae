/* 居民端 report form: photo previews, and where the problem is — my home, a point tapped on a
   small map of the subdistrict's buildings (MapLibre, loaded only when asked for) or the phone's
   position. No inline script or style (the CSP forbids them); no outside URL (works offline). */
(function () {
  "use strict";

  var form = document.getElementById("report-form");
  if (!form) { return; }
  var lonInput = form.querySelector("[data-lon]");
  var latInput = form.querySelector("[data-lat]");
  var where = form.querySelector("[data-where]");
  var mapBox = form.querySelector("[data-map-box]");
  var previews = form.querySelector("[data-previews]");
  var fileInput = document.getElementById("photos");
  var urls = [];

  // --- photos: previews of the chosen files (blob: URLs, allowed by the CSP) ----------------
  function showPreviews() {
    urls.forEach(function (u) { URL.revokeObjectURL(u); });
    urls = [];
    previews.textContent = "";
    var chosen = Array.prototype.slice.call(fileInput.files || []);
    chosen.forEach(function (file, i) {
      if (!/^image\//.test(file.type)) { return; }
      var url = URL.createObjectURL(file);
      urls.push(url);
      var img = document.createElement("img");
      img.src = url;
      img.alt = file.name || String(i + 1);
      img.setAttribute("data-preview", "");
      previews.appendChild(img);
    });
  }
  if (fileInput && previews) { fileInput.addEventListener("change", showPreviews); }

  // --- location ------------------------------------------------------------------------------
  function setPoint(lon, lat, label) {
    lonInput.value = lon.toFixed(6);
    latInput.value = lat.toFixed(6);
    where.textContent = label + "：" + lon.toFixed(5) + ", " + lat.toFixed(5);
  }

  function clearPoint() {
    lonInput.value = "";
    latInput.value = "";
    where.textContent = "";
  }

  var map = null;
  var marker = null;
  var mapLoading = false;

  function loadOnce(tag, attrs) {
    return new Promise(function (resolve, reject) {
      var el = document.createElement(tag);
      Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
      el.addEventListener("load", function () { resolve(); });
      el.addEventListener("error", function () { reject(new Error("cannot load " + (attrs.src || attrs.href))); });
      document.head.appendChild(el);
    });
  }

  function mapFailed() {
    mapBox.querySelector(".m-map").hidden = true;
    var note = document.createElement("p");
    note.className = "m-field-error";
    note.textContent = form.getAttribute("data-map-failed");
    mapBox.appendChild(note);
  }

  function pinElement(className, text) {
    var el = document.createElement("div");
    el.className = className;
    if (text) { el.textContent = text; }
    return el;
  }

  function buildMap(data) {
    var gl = window.maplibregl;
    if (!gl || (gl.supported && !gl.supported())) { mapFailed(); return; }
    gl.setWorkerUrl("/static/vendor/maplibre-gl-csp-worker.js");
    var empty = { type: "FeatureCollection", features: [] };
    var style = {
      version: 8,
      sources: {
        buildings: { type: "geojson", data: data.buildings || empty },
        home: { type: "geojson", data: data.home ? { type: "FeatureCollection", features: [data.home] } : empty }
      },
      layers: [
        { id: "background", type: "background", paint: { "background-color": "#eef1f4" } },
        { id: "buildings", type: "fill", source: "buildings", paint: { "fill-color": "#c9ced6", "fill-outline-color": "#6b7280" } },
        { id: "home", type: "fill", source: "home", paint: { "fill-color": "#16a34a", "fill-opacity": 0.6 } }
      ]
    };
    try {
      map = new gl.Map({ container: "pick-map", style: style, center: data.centre || [121.4, 31.0], zoom: 17,
                         attributionControl: false, dragRotate: false, pitchWithRotate: false });
    } catch (e) {
      map = null;
      mapFailed();
      return;
    }
    map.touchZoomRotate.disableRotation();
    map.addControl(new gl.NavigationControl({ showCompass: false }), "top-right");
    if (data.home && data.centre) {
      new gl.Marker({ element: pinElement("m-home-label", form.getAttribute("data-home-label")), anchor: "bottom",
                      offset: [0, -6] }).setLngLat(data.centre).addTo(map);
    }
    map.on("click", function (evt) {
      if (!marker) { marker = new gl.Marker({ element: pinElement("m-pin"), anchor: "bottom" }); }
      marker.setLngLat(evt.lngLat).addTo(map);
      setPoint(evt.lngLat.lng, evt.lngLat.lat, form.getAttribute("data-picked"));
    });
  }

  function openMap() {
    mapBox.hidden = false;
    if (map) { map.resize(); return; }
    if (mapLoading) { return; }
    mapLoading = true;
    Promise.all([
      window.maplibregl ? Promise.resolve() : loadOnce("script", { src: "/static/vendor/maplibre-gl-csp.js" }),
      loadOnce("link", { rel: "stylesheet", href: "/static/vendor/maplibre-gl.css" }),
      fetch(form.getAttribute("data-map-url"), { credentials: "same-origin" }).then(function (r) {
        if (!r.ok) { throw new Error("map data " + r.status); }
        return r.json();
      })
    ]).then(function (done) { buildMap(done[2]); }, function () { mapFailed(); });
  }

  function locate() {
    if (!navigator.geolocation) { where.textContent = form.getAttribute("data-locate-failed"); return; }
    where.textContent = form.getAttribute("data-locating");
    navigator.geolocation.getCurrentPosition(function (pos) {
      setPoint(pos.coords.longitude, pos.coords.latitude, form.getAttribute("data-located"));
    }, function () {
      clearPoint();
      where.textContent = form.getAttribute("data-locate-failed");
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  }

  function onLocation(value, initial) {
    if (value === "map") {
      if (!initial) { clearPoint(); }
      openMap();
    } else {
      mapBox.hidden = true;
      if (value === "gps") {
        if (!initial || !lonInput.value) { clearPoint(); locate(); }
      } else {
        clearPoint();
      }
    }
  }

  form.addEventListener("change", function (evt) {
    if (evt.target.name === "location") { onLocation(evt.target.value, false); }
  });
  var lon0 = parseFloat(lonInput.value), lat0 = parseFloat(latInput.value);
  if (!isNaN(lon0) && !isNaN(lat0)) {  // the form came back with a point chosen before
    setPoint(lon0, lat0, form.getAttribute("data-picked"));
  }
  var checked = form.querySelector("input[name=location]:checked");
  if (checked && checked.value !== "home") { onLocation(checked.value, true); }
})();
