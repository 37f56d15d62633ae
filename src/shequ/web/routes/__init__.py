"""Routers of the web layer itself: access (login, tokens, health) and the general pages."""
