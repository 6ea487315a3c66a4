"""Gunicorn settings for Mission Watch: several worker processes over one shared store.

    gunicorn --config deploy/gunicorn.conf.py

Everything comes from the same MISSIONWATCH_* settings as ``python app.py`` (see the README):
MISSIONWATCH_HOST and MISSIONWATCH_PORT (where to listen), MISSIONWATCH_WORKERS and
MISSIONWATCH_THREADS, DATABASE_URL (PostgreSQL for several workers), MISSIONWATCH_DATA_DIR.

* The app is loaded once, before the workers are forked (``preload_app``): the store is
  migrated once and the roster, its impact index and the hazard caches are built once and
  shared copy-on-write by every worker. Each worker then opens its own database connections.
* The workers never poll feeds: run ``python app.py feeds poll`` as its own process (one poller
  at a time holds a lease in the store; a second one stands by).
* The access log leaves out query strings: a wall display's link carries its token there.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from settings import Settings

_settings = Settings.from_env()

wsgi_app = "app:wsgi()"
bind = [f"{_settings.host}:{_settings.port}"]
workers = _settings.worker_count
worker_class = "gthread"
threads = _settings.threads
preload_app = True
timeout = 120            # a call-list export of a large incident takes a few seconds
graceful_timeout = 30
keepalive = 75           # longer than a wall's refresh (30 s) and a proxy's idle timeout (60 s):
                         # a connection is never closed just as a screen reuses it
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
errorlog = "-"
proc_name = "missionwatch"
control_socket_disable = True  # signals (HUP, TERM) are enough; no socket in $HOME to clash


def on_starting(server):
    """Before the app is loaded: start the shared request metrics afresh."""
    import app

    app.reset_shared_metrics(_settings)


def post_fork(server, worker):
    """In each new worker: connections of its own, never the parent's."""
    import app

    app.after_fork()
