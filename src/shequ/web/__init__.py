"""The web layer: app factory, dependencies, security, pages and the API."""
