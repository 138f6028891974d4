#!/usr/bin/env bash
# Pair every notebooks/<name>.md with notebooks/<name>.ipynb (jupytext --sync) and
# strip outputs, execution counts and Colab metadata; see tools/sync_notebooks.py.
#
# Usage (from anywhere):  bash tools/sync_notebooks.sh [notebooks/name.md ...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY=${PYTHON:-$here/../.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec "$PY" "$here/sync_notebooks.py" "$@"
