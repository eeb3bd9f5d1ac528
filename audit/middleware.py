"""The one request-id middleware (first in ``MIDDLEWARE``)."""

from controlplane.logging import bind

from . import request_meta


class RequestIDMiddleware:
    """Give every request one id, the same everywhere it shows.

    ``request.request_id`` (``audit.record(request=...)`` stores it), the log
    context (every line logged while the request runs, and tasks it publishes:
    controlplane/logging.py) and the ``X-Request-ID`` response header. A
    trusted proxy's well-formed id (nginx ``$request_id``) is kept so logs on
    both sides match; anyone else's is replaced by a new one
    (``request_meta.incoming_request_id``). While the request runs it is also
    ``request_meta.current_request()``, so events a service records without being
    handed the request still carry its address, user agent and id.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = request_meta.incoming_request_id(request) or request_meta.new_request_id()
        with bind(request_id=request.request_id), request_meta.bind_request(request):
            response = self.get_response(request)
        response[request_meta.REQUEST_ID_HEADER] = request.request_id
        return response
