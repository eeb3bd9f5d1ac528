"""Settings read from the environment: who counts as a trusted proxy."""

import json
import os
import subprocess
import sys

import pytest

from tests.workerproc import ROOT


def _setting(name: str, **overrides) -> object:
    """``controlplane.settings.<name>`` as a fresh process with these variables sees it."""
    env = {k: v for k, v in os.environ.items() if k not in {"TRUSTED_PROXY_COUNT", "AUDIT_TRUSTED_PROXIES"}}
    env.update(overrides)
    code = f"import json, controlplane.settings as s; print(json.dumps(s.{name}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # No proxy declared: nobody may set the client address or the request id.
        ({}, []),
        # A proxy declared (deploy/: nginx on this machine): loopback is trusted.
        ({"TRUSTED_PROXY_COUNT": "1"}, ["127.0.0.0/8", "::1/128"]),
        # The proxies' addresses given: exactly those.
        ({"TRUSTED_PROXY_COUNT": "1", "AUDIT_TRUSTED_PROXIES": "10.0.0.0/8"}, ["10.0.0.0/8"]),
        # Given empty on purpose: nobody, even with a proxy count.
        ({"TRUSTED_PROXY_COUNT": "1", "AUDIT_TRUSTED_PROXIES": ""}, []),
    ],
)
def test_trusted_proxies_follow_the_declared_proxy(overrides, expected):
    assert _setting("AUDIT_TRUSTED_PROXIES", **overrides) == expected
