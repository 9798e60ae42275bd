"""The app shell: which pages a role may see (used by app.py's st.navigation)."""
from __future__ import annotations

import streamlit as st

# (script, title, material icon, roles that see it)
PAGES: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("pages/overview.py", "Overview", ":material/dashboard:", ("admin", "analyst")),
    ("pages/events.py", "Events", ":material/list_alt:", ("admin", "analyst")),
    ("pages/detections.py", "Detections", ":material/crisis_alert:", ("admin", "analyst")),
    ("pages/sessions.py", "SSH sessions", ":material/terminal:", ("admin", "analyst")),
    ("pages/entities.py", "Entities", ":material/person_search:", ("admin", "analyst")),
    ("pages/live.py", "Live", ":material/monitor_heart:", ("admin", "analyst")),
    ("pages/admin.py", "Admin", ":material/admin_panel_settings:", ("admin",)),
]


def page_titles(role: str) -> list[str]:
    return [title for _, title, _, roles in PAGES if role in roles]


def pages_for(role: str) -> list:
    """st.Page objects for ``role``; the first (Overview) is the default page."""
    out = []
    for i, (path, title, icon, roles) in enumerate(PAGES):
        if role in roles:
            out.append(st.Page(path, title=title, icon=icon, default=(i == 0)))
    return out


def render_nav(pages: list) -> None:
    """Sidebar links to ``pages`` (st.navigation runs hidden: client.showSidebarNavigation is off
    so that a direct page request on a fresh server lists nothing before the login)."""
    with st.sidebar:
        for page in pages:
            st.page_link(page)
