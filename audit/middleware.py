from . import request_meta


class RequestIDMiddleware:
    """Give every request an id: ``request.request_id`` and the ``X-Request-ID`` response header.

    A trusted proxy's id (nginx ``$request_id``) is kept so logs on both sides
    match; otherwise a new one is made. ``audit.record(request=...)`` stores it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = request_meta.incoming_request_id(request) or request_meta.new_request_id()
        response = self.get_response(request)
        response[request_meta.REQUEST_ID_HEADER] = request.request_id
        return response
