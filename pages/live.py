"""Live page: what this machine is doing right now (metrics, processes, sockets, users)."""

from secdash.ui.auth import require_login
from secdash.ui.live import render_live

require_login()
render_live()
