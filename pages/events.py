"""Events page: the explorer (filters in the URL, event table with details, charts, safe export)."""

from secdash.ui.auth import require_login
from secdash.ui.events import render_events

user = require_login()
render_events(user)
