"""Notifications: in-app messages (live by server-sent events), signed webhooks, SMS and voice."""
