"""secdash dashboard: the router and frame. Page config, the login gate, role-based navigation."""
import streamlit as st

from secdash.ui.auth import nav_slot, require_login
from secdash.ui.shell import pages_for

st.set_page_config(page_title="secdash", page_icon=":material/shield:", layout="wide")
user = require_login()
pages = pages_for(user.role)
current = st.navigation(pages, position="hidden")
# client.showSidebarNavigation is off (a direct page request on a fresh server must list nothing
# before the login), so the links are drawn here, in the slot the gate reserved above the account box.
with nav_slot():
    for page in pages:
        st.page_link(page)
current.run()
