"""SSH sessions: reconstructed login sessions with duration, source, commands, and a timeline."""
from secdash.ui.auth import require_login
from secdash.ui.entities import render_sessions

user = require_login()
render_sessions(user)
