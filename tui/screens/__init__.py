"""Screens pushed over the dashboard: the key help and an alert's detail."""
