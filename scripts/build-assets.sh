#!/usr/bin/env bash
# Front-end libraries come from npm at build time and are served by the app (no CDN).
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --loglevel=error
dest=src/shequ/web/static/vendor
rm -rf "$dest" && mkdir -p "$dest"
cp node_modules/htmx.org/dist/htmx.min.js "$dest/"
cp node_modules/alpinejs/dist/cdn.min.js "$dest/alpine.min.js"
echo "assets built in $dest"
