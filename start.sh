#!/usr/bin/env bash
# Quick start: create the Python environment, prepare the data directory and start the dashboard.
#   ./start.sh                 (listens on 127.0.0.1:8501; see README for options)
# Environment: SECDASH_HOME (data directory), SECDASH_PORT (default 8501), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    echo "secdash needs Python 3.11 or newer as '$PYTHON' (set PYTHON=/path/to/python3.11)." >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv || {
        echo "Could not create a virtual environment. On Debian/Ubuntu: sudo apt-get install python3-venv" >&2
        exit 1
    }
fi
stamp=.venv/.requirements.sha
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install --disable-pip-version-check -q -r requirements.txt
    echo "$want" > "$stamp"
fi
.venv/bin/python -m secdash setup
exec .venv/bin/python -m streamlit run app.py --server.port "${SECDASH_PORT:-8501}"
