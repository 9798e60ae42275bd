"""Detections page (placeholder until its issue lands)."""
import streamlit as st

from secdash.ui.auth import require_login

require_login()
st.title("Detections")
st.info("This page is not built yet.")
