"""Admin page: accounts, audit log, data sources, parser health (admin role only)."""
import streamlit as st

from secdash.ui.auth import require_login

user = require_login(role="admin")

from secdash.config import load as load_config  # noqa: E402
from secdash.ui import admin  # noqa: E402

cfg = load_config()
st.title("Admin")
users_tab, audit_tab, sources_tab, health_tab = st.tabs(["Users", "Audit log", "Data sources", "Parser health"])
with users_tab:
    admin.render_users(cfg, user)
with audit_tab:
    admin.render_audit(cfg)
with sources_tab:
    admin.render_sources(cfg)
with health_tab:
    admin.render_parser_health(cfg)
