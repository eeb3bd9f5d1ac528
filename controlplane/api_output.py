"""How the API writes a response: DRF's JSONRenderer, with the encoding done by orjson
(REST_FRAMEWORK DEFAULT_RENDERER_CLASSES). Its own module, as api_input.py: DRF imports
it while rest_framework.views loads.

The bytes are DRF's: compact separators, UTF-8 (not \\u escapes), U+2028/U+2029 escaped;
serializers turn Decimals and datetimes into strings, and whatever reaches the encoder
unconverted goes through DRF's encoder (datetimes too, not orjson's own format). A body
orjson cannot write (an int beyond 64 bits) and an ``; indent=`` request go to DRF's
renderer unchanged; a float NaN is written null, where DRF's strict renderer raised
(issue 25: the API's hot paths, measured in docs/BENCHMARKS.md)."""

import orjson
from rest_framework import renderers
from rest_framework.utils.encoders import JSONEncoder

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_default = JSONEncoder().default


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None or self.get_indent(accepted_media_type or "", renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            body = orjson.dumps(data, default=_default, option=_OPTIONS)
        except (orjson.JSONEncodeError, TypeError, ValueError):
            return super().render(data, accepted_media_type, renderer_context)
        if b"\xe2\x80\xa8" in body or b"\xe2\x80\xa9" in body:  # as DRF: safe inside <script>
            body = body.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        return body
