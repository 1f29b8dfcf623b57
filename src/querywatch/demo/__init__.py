"""The reference shop that ``querywatch demo`` runs, breaks with a bad release and rolls back.

``shop`` is the service itself (schema, seed data, two releases, a WSGI app and its server);
``deployer`` switches the running service between releases the way a real deploy does; ``load``
drives it with simulated users; ``summary`` turns the load records into the incident's impact.
"""
