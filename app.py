"""secdash dashboard: the router and frame. Page config, the login gate, role-based navigation."""
import streamlit as st

from secdash.ui.auth import require_login
from secdash.ui.shell import pages_for, render_nav

st.set_page_config(page_title="secdash", page_icon=":material/shield:", layout="wide")
user = require_login()
pages = pages_for(user.role)
current = st.navigation(pages, position="hidden")
render_nav(pages)
current.run()
