from django import template

from ..sshkeys import InvalidSSHKey, ssh_key_parse

register = template.Library()


@register.filter
def ssh_fingerprint(text: str) -> str:
    """``ED25519 256 SHA256:…`` for a stored key; the start of the text if it no longer parses
    (keys saved before the parser existed)."""
    try:
        return ssh_key_parse(text).label
    except InvalidSSHKey:
        return text[:40] + "…"
