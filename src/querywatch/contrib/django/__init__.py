"""querywatch for Django: add ``"querywatch.contrib.django"`` to ``INSTALLED_APPS`` and
``"querywatch.contrib.django.middleware.QueryWatchMiddleware"`` to ``MIDDLEWARE``
(docs/integrations/django.md).

Every statement is captured through Django's own hook (``connection.execute_wrapper``) on every
connection, including the ones other threads open later; requests are recorded under their view
name with the authenticated user hashed; ``settings.QUERYWATCH`` holds querywatch's settings.
``pytest --querywatch`` under pytest-django and ``manage.py test --querywatch`` (with
``TEST_RUNNER = "querywatch.contrib.django.runner.QueryWatchTestRunner"``) run the CI gate;
``manage.py querywatch <command>`` runs the CLI with the project's database.

Importing this package imports nothing from Django (the pytest plugin is loaded in every pytest
session); the modules that need Django import it themselves.
"""
