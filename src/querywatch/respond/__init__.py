"""Responses: alert sinks and routing (rollback and runbooks come later)."""
