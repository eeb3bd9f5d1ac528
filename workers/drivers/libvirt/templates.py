"""Render the XML this driver sends to libvirt from the template files beside it.

``domain.xml`` is the whole domain; ``fragments.xml`` holds the optional pieces
(boot method, CPU, NIC, serial console, seed CD-ROM) and the storage volume XML,
each after a ``<!-- fragment: NAME -->`` marker. Both use ``string.Template``:
every ``$value`` is XML-escaped here, every ``$something_xml`` is a fragment
rendered beforehand and inserted unchanged. Nothing else builds XML by hand.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from string import Template
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
_MARKER = re.compile(r"^<!-- fragment: (\S+) -->\n", re.MULTILINE)
_ATTRIBUTE_SAFE = {"'": "&apos;", '"': "&quot;"}


@functools.cache
def _templates() -> dict[str, Template]:
    templates = {"domain": Template((HERE / "domain.xml").read_text())}
    parts = _MARKER.split((HERE / "fragments.xml").read_text())
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        templates[name] = Template(body.rstrip("\n"))
    return templates


def render(template: str, /, **values: object) -> str:
    """One template with its values; a missing value is a programming error (KeyError)."""
    safe = {
        key: (str(value) if key.endswith("_xml") else escape(str(value), _ATTRIBUTE_SAFE))
        for key, value in values.items()
    }
    return _templates()[template].substitute(safe)


def render_each(template: str, items: list[dict]) -> str:
    """The same fragment once per item, joined by newlines ("" for none)."""
    return "\n".join(render(template, **item) for item in items)
