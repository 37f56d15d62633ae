#!/usr/bin/env bash
# Before the first release the schema has one migration; regenerate it after a model change.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
rm -f src/shequ/migrations/versions/*_initial_schema.py
# hand-written migrations (0002_… triggers) stand aside while the initial one is regenerated
mkdir "$tmp/aside"
find src/shequ/migrations/versions -maxdepth 1 -name '0*.py' -exec mv {} "$tmp/aside/" \;
trap 'mv "$tmp"/aside/*.py src/shequ/migrations/versions/ 2>/dev/null || true; rm -rf "$tmp"' EXIT
SHEQU_VAR_DIR="$tmp" SHEQU_DATABASE_URL="sqlite:///$tmp/m.db" .venv/bin/python -c \
  "from shequ.core import migrate; migrate.revision('initial schema')"
f=$(ls src/shequ/migrations/versions/*_initial_schema.py)
mv "$f" src/shequ/migrations/versions/0001_initial_schema.py
sed -i "s/^revision = .*/revision = '0001'/" src/shequ/migrations/versions/0001_initial_schema.py
.venv/bin/ruff check --fix -q src/shequ/migrations/versions/0001_initial_schema.py || true
echo "regenerated src/shequ/migrations/versions/0001_initial_schema.py"
