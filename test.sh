#!/usr/bin/env bash
# Run the whole test suite (unit, golden files, conformance, app and real-browser tests).
#   ./test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv || {
        echo "Could not create a virtual environment. On Debian/Ubuntu: sudo apt-get install python3-venv" >&2
        exit 1
    }
fi
stamp=.venv/.requirements-dev.sha
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install --disable-pip-version-check -q -r requirements-dev.txt
    echo "$want" > "$stamp"
fi
# Browser tests drive Debian's Chromium (Playwright's own browser download does not work offline).
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "Browser tests need Chromium at /usr/bin/chromium: sudo apt-get install chromium" >&2
        exit 1
    fi
fi
# pytest exits 5 when it collected no test: that is a failure here, as is any other non-zero code.
exec .venv/bin/python -m pytest "$@"
