"""Entities: one address (events, usernames tried, outcomes, alerts) or one user (logins, sudo, sessions)."""
from secdash.ui.auth import require_login
from secdash.ui.entities import render_entities

user = require_login()
render_entities(user)
