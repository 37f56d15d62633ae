#!/usr/bin/env bash
# Front-end libraries come from npm at build time and are served by the app (no CDN).
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --loglevel=error
dest=src/shequ/web/static/vendor
rm -rf "$dest" && mkdir -p "$dest/fonts/files"
cp node_modules/htmx.org/dist/htmx.min.js "$dest/"
cp node_modules/alpinejs/dist/cdn.min.js "$dest/alpine.min.js"
# MapLibre GL: the CSP build (its worker is a file of this site, not a blob)
cp node_modules/maplibre-gl/dist/maplibre-gl-csp.js node_modules/maplibre-gl/dist/maplibre-gl-csp-worker.js \
   node_modules/maplibre-gl/dist/maplibre-gl.css "$dest/"
cp node_modules/echarts/dist/echarts.min.js "$dest/"
# Noto Sans SC (regular and bold) for the pages and the map labels: woff2 split by Unicode range,
# so a browser fetches only the parts of the font that the page's characters need
font=node_modules/@fontsource/noto-sans-sc
for weight in 400 700; do
  cp "$font"/files/*-"$weight"-normal.woff2 "$dest/fonts/files/"
  sed -E "s#, url\\(\\./files/[^)]*\\.woff\\) format\\('woff'\\)##g" "$font/$weight.css" > "$dest/fonts/noto-sans-sc-$weight.css"
done
echo "assets built in $dest"
