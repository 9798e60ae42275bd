"""Detections page: alerts by severity and rule, their raw lines, links to Events, "what if"."""
from secdash.ui.auth import require_login
from secdash.ui.detections import render_detections

user = require_login()
render_detections(user)
