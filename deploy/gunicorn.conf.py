"""gunicorn settings for controlplane-web.service (``gunicorn --config``).

Everything comes from the environment file: WEB_BIND, WEB_WORKERS, WEB_THREADS,
WEB_TIMEOUT, FORWARDED_ALLOW_IPS and LOG_FORMAT (json: access and error lines
as JSON objects, with the request id nginx sent).
"""

import os

bind = os.environ.get("WEB_BIND", "127.0.0.1:8000")
# Threads overlap the PostgreSQL and Redis round trips of a request; processes use the cores.
# On two cores (bench/api, issue 25) 3 workers x 2 threads and 4 sync workers were no faster
# than 2 x 4 (the Procfile's), see docs/BENCHMARKS.md.
workers = int(os.environ.get("WEB_WORKERS", "3"))
threads = int(os.environ.get("WEB_THREADS", "4"))
# A request never waits on a hypervisor, so anything slower than this is stuck.
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
# On SIGTERM (systemctl stop/restart) in-flight requests get this long to finish.
graceful_timeout = 30
keepalive = 5
# Restart workers now and then so a slow leak never becomes an outage.
max_requests = 2000
max_requests_jitter = 200
# nginx runs on this host: trust its X-Forwarded-* headers only.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
accesslog = "-"
errorlog = "-"
# gunicorn >= 24 opens a control socket; keep it in the unit's RuntimeDirectory
# (/run/controlplane), not in a home directory the hardened unit cannot write.
if os.environ.get("RUNTIME_DIRECTORY"):
    control_socket = os.path.join(os.environ["RUNTIME_DIRECTORY"].split(":")[0], "gunicorn.ctl")
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(D)sus request_id=%({x-request-id}o)s'

if os.environ.get("LOG_FORMAT") == "json":
    _handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "controlplane.logging.JsonFormatter"}},
        "handlers": {"json": _handler},
        "root": {"handlers": ["json"], "level": "INFO"},
        "loggers": {
            "gunicorn.error": {"handlers": ["json"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["json"], "level": "INFO", "propagate": False},
        },
    }
