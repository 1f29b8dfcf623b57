"""HTTP: ``querywatch serve``, the API that CI/CD and people call.

Deploy markers (start, finish, list), a health check, and the guarded rollback of the deploy an
incident blames (docs/api.md, docs/respond.md). ``api`` maps a request to a status and an
envelope without sockets; ``server`` carries it over the standard library's HTTP server, with the
token and the request checks.
"""
