"""A small web shop on SQLite or PostgreSQL whose v2 release ships a slow query and an N+1."""
