"""HTTP: ``querywatch serve``, one Starlette app on uvicorn for CI/CD, people and Prometheus.

``app`` builds the app and its request checks, ``api`` the JSON API (deploy markers, the guarded
rollback, the canary endpoints; docs/api.md), ``pages`` the dashboard, ``metrics`` /metrics,
``auth`` and ``login`` who may read and act, ``templating`` the HTML, ``state`` what requests
share, and ``server`` binds the socket and runs uvicorn.
"""
