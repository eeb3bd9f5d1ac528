"""OpenSSH public keys: parse one line with ``cryptography`` and describe it.

``ssh_key_parse`` is the one check every place that takes a key uses (the key
library, the VM request API and the wizard): a key that does not load, an RSA
key under 2048 bits, a DSA key or anything with more than one line is refused
with a message a person can act on.
"""

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

MIN_RSA_BITS = 2048
SUPPORTED_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
)
HINT = "Paste one OpenSSH public key line, e.g. the contents of ~/.ssh/id_ed25519.pub (ssh-ed25519 AAAAC3… you@host)."


class InvalidSSHKey(ValueError):
    """The text is not a usable OpenSSH public key; ``str()`` says why."""


@dataclass(frozen=True)
class ParsedKey:
    key_type: str  # ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256 …
    bits: int
    comment: str
    fingerprint: str  # SHA256:<base64, no padding>, as ssh-keygen -l prints it
    line: str  # "type base64 comment", normalised to single spaces

    @property
    def label(self) -> str:
        """``ED25519 256 SHA256:…`` — what the portal shows next to a key."""
        short = self.key_type.removeprefix("ssh-").split("-")[0].upper()
        return f"{short} {self.bits} {self.fingerprint}"


def fingerprint_of(blob: bytes) -> str:
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def _bits(key) -> int:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return 256
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return key.key_size
    raise InvalidSSHKey(f"This key type is not accepted; use one of {', '.join(SUPPORTED_TYPES)}.")


def ssh_key_parse(text: str) -> ParsedKey:
    """Parse one public key line (``type base64 [comment]``) or raise ``InvalidSSHKey``."""
    text = (text or "").strip()
    if not text:
        raise InvalidSSHKey("The key is empty. " + HINT)
    if "\n" in text or "\r" in text:
        raise InvalidSSHKey("Paste exactly one key (one line); save several keys separately.")
    if text.startswith("-----BEGIN"):
        raise InvalidSSHKey("That is a PEM block (possibly a private key). " + HINT)
    parts = text.split(None, 2)
    if len(parts) < 2:
        raise InvalidSSHKey("A key has a type and a base64 body. " + HINT)
    key_type, body = parts[0], parts[1]
    comment = parts[2].strip() if len(parts) == 3 else ""
    if key_type not in SUPPORTED_TYPES:
        accepted = ", ".join(SUPPORTED_TYPES)
        raise InvalidSSHKey(f"Key type {key_type[:40]!r} is not accepted (use {accepted}). " + HINT)
    try:
        blob = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSSHKey("The key's body is not valid base64 (was it shortened or cut?). " + HINT) from None
    try:
        key = load_ssh_public_key(f"{key_type} {body}".encode())
    except (ValueError, UnsupportedAlgorithm):
        message = f"This is not a valid {key_type} key (the body is incomplete or damaged). "
        raise InvalidSSHKey(message + HINT) from None
    bits = _bits(key)
    if isinstance(key, rsa.RSAPublicKey) and bits < MIN_RSA_BITS:
        raise InvalidSSHKey(f"This RSA key has {bits} bits; at least {MIN_RSA_BITS} are required (or use ed25519).")
    return ParsedKey(
        key_type=key_type,
        bits=bits,
        comment=comment[:200],
        fingerprint=fingerprint_of(blob),
        line=" ".join(filter(None, [key_type, body, comment])),
    )
