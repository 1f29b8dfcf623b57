"""HTTP: the deploy API for CI/CD (dashboard and /metrics come later)."""
