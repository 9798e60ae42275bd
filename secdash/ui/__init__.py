"""The only streamlit/plotly-facing package: auth gate, cached data wrappers, figures, widgets."""
