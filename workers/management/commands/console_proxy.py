"""``manage.py console_proxy``: the browser console proxy (docs/CONSOLE.md)."""

import logging

from django.conf import settings
from django.core.management.base import BaseCommand

from workers.console.proxy import serve


class Command(BaseCommand):
    help = "Run the console proxy: browser WebSockets with a one-time token to VM consoles."

    def add_arguments(self, parser):
        parser.add_argument(
            "--listen", default=settings.CONSOLE_PROXY_LISTEN, help="host:port (default CONSOLE_PROXY_LISTEN)"
        )
        parser.add_argument("--verbose", action="store_true", help="Log every connection's details.")

    def handle(self, *args, listen, verbose, **options):
        # websockify logs through "websocket.<class>" loggers: one line per connection only with --verbose.
        logging.getLogger("websocket").setLevel(logging.INFO if verbose else logging.WARNING)
        self.stdout.write(f"Console proxy listening on {listen}")
        self.stdout.flush()
        serve(listen, verbose=verbose)
