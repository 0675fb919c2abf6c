"""ASGI entry point (uvicorn): the web UI and, later, Server-Sent Events."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sonjog.settings")
application = get_asgi_application()
