"""Kefu's application layer: settings, dialogue, sessions, guardrails, services and the `kefu` CLI."""
