"""secdash dashboard entry point (placeholder: the app shell is built in the auth/app-shell issue)."""
import streamlit as st

st.set_page_config(page_title="secdash", layout="wide")
st.title("secdash")
