"""How secrets handed to people (API tokens, invitation links) are made and stored.

Only SHA-256 digests are stored. The secrets carry 256 random bits, so a fast
hash is enough: there is nothing to brute-force that a slow hash would protect.
"""

import hashlib
import secrets

TOKEN_PREFIX = "cpat_"  # "control plane access token": lets secret scanners recognise a leak


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def token_generate() -> tuple[str, str, str]:
    """A new API token: (prefix, secret, raw). Raw is ``cpat_<8 hex>_<43 url-safe chars>``."""
    prefix, secret = secrets.token_hex(4), secrets.token_urlsafe(32)
    return prefix, secret, f"{TOKEN_PREFIX}{prefix}_{secret}"


def token_split(raw: str) -> tuple[str, str] | None:
    """``cpat_<prefix>_<secret>`` → (prefix, secret), or None when malformed."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    prefix, sep, secret = raw[len(TOKEN_PREFIX) :].partition("_")
    if not sep or len(prefix) != 8 or not secret:
        return None
    return prefix, secret


def invitation_token_generate() -> str:
    return secrets.token_urlsafe(32)
