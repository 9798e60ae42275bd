"""Overview (home page): KPIs with change against the previous period, top alerts, charts, freshness."""
from secdash.ui.auth import require_login
from secdash.ui.overview import render_overview

user = require_login()
render_overview(user)
