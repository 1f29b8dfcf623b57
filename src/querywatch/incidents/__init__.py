"""Incidents: what a detection becomes once the policy fires, with its timeline."""
