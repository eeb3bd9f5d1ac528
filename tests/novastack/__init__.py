"""Nova's functional-test stack as a process: the OpenStack driver's real test tier.

``NovaStack(workdir).start()`` runs ``serve_nova.py`` with the nova virtualenv that
``.ci/nova-setup.sh`` builds in ``var/nova-venv`` (``make test`` runs it first), waits
for its READY line and reads the INFO line (endpoint, image ids, the network's id).
If the venv is missing or the stack does not come up, ``start`` raises with the reason
and the log: the real tier fails, it is never skipped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
VENV = Path(os.environ.get("NOVA_VENV", ROOT / "var" / "nova-venv"))
SETUP = ".ci/nova-setup.sh"
DEFAULT_IMAGE_NAME = "default_image"


class NovaStackError(RuntimeError):
    pass


class NovaStack:
    """``serve_nova.py`` on 127.0.0.1, a free port; nova's default quotas unlimited (per-project ones apply)."""

    def __init__(self, workdir: Path, *, computes: int = 2, quota_unlimited: bool = True):
        self.workdir = Path(workdir)
        self.out_path = self.workdir / "nova.out"
        self.log_path = self.workdir / "nova.log"  # serve_nova's own lines, access log, tracebacks
        self.env = {
            "NOVA_COMPUTES": str(computes),
            "NOVA_QUOTA_UNLIMITED": "1" if quota_unlimited else "0",
            "NOVA_ACCESS_LOG": "1",
            "NOVA_LOG_FILE": str(self.workdir / "nova-service.log"),
        }
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}
        self.endpoint = ""

    @property
    def python(self) -> Path:
        return VENV / "bin" / "python"

    def start(self, timeout: float = 240) -> NovaStack:
        if not self.python.exists() or not list(VENV.glob(".installed-nova-*")):
            raise NovaStackError(f"The nova test stack is not in {VENV}: run `bash {SETUP}` (make test does).")
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {key: value for key, value in os.environ.items() if not key.startswith(("OS_", "PYTHON"))}
        env.update(self.env)
        with open(self.out_path, "wb") as out, open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.python), str(Path(__file__).with_name("serve_nova.py")), "0"],
                cwd=self.workdir,
                env=env,
                stdout=out,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            lines = self.out_path.read_text(errors="replace").splitlines()
            ready = [line for line in lines if line.startswith("READY ")]
            if ready:
                self.endpoint = ready[0].split()[1]
                self.info = json.loads(next(line for line in lines if line.startswith("INFO "))[5:])
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                reason = f"exited with {self.proc.returncode}" if self.proc.poll() is not None else "timed out"
                self.stop()
                raise NovaStackError(f"The nova test stack did not start ({reason}):\n{self.tail()}")
            time.sleep(0.1)

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def requests(self, fragment: str) -> list[str]:
        """Access-log lines (``"GET /v2.1/servers/... HTTP/1.1" 200``) containing ``fragment``."""
        return [line for line in self.log_path.read_text(errors="replace").splitlines() if fragment in line]

    @property
    def image_id(self) -> str:
        return self.info[DEFAULT_IMAGE_NAME]

    @property
    def network_id(self) -> str:
        return self.info["network_id"]

    def settings(self, **overrides) -> dict:
        """The Hypervisor.connection of an OpenStack hypervisor on this stack: nova noauth2 tokens,
        the compute endpoint, the fixture's network shared by every project."""
        return {
            "auth_type": "none",
            "compute_endpoint_override": self.endpoint,
            "network_id": self.network_id,
            "poll_seconds": 0.2,
        } | overrides

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)  # a throwaway stack: no reason to wait longer for a clean exit
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
