"""Alarms: one active alarm per (source, type), acknowledged, cleared, escalated."""
