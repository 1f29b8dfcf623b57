"""Framework integrations (Django, Flask, FastAPI, Celery): optional, on top of everything.

Each integration wires the core (capture, config, store, the gate) into one framework's own hooks
and is imported only by that framework's settings or entry points; nothing in querywatch imports
this package, so ``import querywatch`` never imports a framework.
"""
