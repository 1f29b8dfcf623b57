"""Detection: baselines, regression tests, deploy correlation, triage and attribution."""
