"""Domain errors raised by services; the API and portal turn them into 4xx.

Services never return HTTP responses; they raise one of these with a message
a person can act on.
"""


class ServiceError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, fields: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields or {}


class InvalidInput(ServiceError):
    code = "invalid"
    status = 400


class NotFound(ServiceError):
    """Also used for objects of another project: their existence is not revealed."""

    code = "not_found"
    status = 404


class Forbidden(ServiceError):
    code = "forbidden"
    status = 403


class Conflict(ServiceError):
    """The object is in a state that does not allow the action (HTTP 409)."""

    code = "conflict"
    status = 409


class PaymentRequired(ServiceError):
    code = "insufficient_balance"
    status = 402
