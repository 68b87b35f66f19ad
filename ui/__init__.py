"""Streamlit front end. Pages only render and call `app.services`."""
