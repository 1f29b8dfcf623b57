"""``celery -A make_celery worker``: the shop's Celery app, set up inside its Flask app."""

from flask_tasks import create_worker_app

celery_app = create_worker_app()
