"""Keystone or neutron-server on 127.0.0.1, for the OpenStack network tests (tests/fixtures/neutronstack.py).

Runs inside var/neutron-venv (.ci/neutron-setup.sh), never the project's venv:
    serve.py keystone <keystone.conf> <port>
    serve.py neutron <neutron.conf> <port>
    serve.py neutron-db <sqlalchemy url>   (every neutron table from its models; no alembic on SQLite)
Each server is the project's own WSGI application in a threading wsgiref server.
"""

import os
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def _serve(application, port: int) -> None:
    print(f"serving on 127.0.0.1:{port}", flush=True)
    make_server("127.0.0.1", port, application, server_class=_Server, handler_class=_Quiet).serve_forever()


def main() -> None:
    what, target = sys.argv[1], sys.argv[2]
    if what == "neutron-db":
        from neutron.db.migration.models import head  # noqa: F401  (imports every model)
        from neutron_lib.db import model_base
        from sqlalchemy import create_engine

        model_base.BASEV2.metadata.create_all(create_engine(target))
        return
    port = int(sys.argv[3])
    if what == "keystone":
        sys.argv = sys.argv[:1]  # keystone parses the command line
        os.environ["OS_KEYSTONE_CONFIG_FILES"] = target
        from keystone.wsgi.api import application
    else:
        sys.argv = ["neutron-api", "--config-file", target]
        from neutron.wsgi.api import application
    _serve(application, port)


if __name__ == "__main__":
    main()
