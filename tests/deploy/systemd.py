"""Helpers to check unit files with ``systemd-analyze verify`` (no running systemd needed)."""

import shutil
import subprocess
from pathlib import Path

from tests.workerproc import ROOT

UNIT_SOURCE = ROOT / "deploy" / "systemd"
# Instances to verify for the worker template: the control queue and a hypervisor's.
WORKER_INSTANCES = ("controlplane-worker@control.service", "controlplane-worker@pve-fra1.service")


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    assert path, "systemd-analyze is missing: run `bash .ci/system-packages.sh` (apt-get install systemd)"
    return path


def unit_names(unit_dir: Path) -> list[str]:
    names = [p.name for p in sorted(unit_dir.iterdir()) if not p.name.endswith("@.service")]
    return names + list(WORKER_INSTANCES)


def verify(unit_dir: Path) -> subprocess.CompletedProcess:
    """``systemd-analyze verify`` every unit in ``unit_dir`` (templates through instances)."""
    return subprocess.run(
        [systemd_analyze(), "verify", *(f"./{name}" for name in unit_names(unit_dir))],
        cwd=unit_dir,
        capture_output=True,
        text=True,
        timeout=60,
    )


def render_with_stub_root(unit_dir: Path, root: Path) -> Path:
    """Copy the units with /opt/controlplane moved under ``root``, where stub executables
    stand in for the virtualenv (verify checks that ExecStart= binaries exist)."""
    venv_bin = root / "opt" / "controlplane" / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    for name in ("python", "gunicorn", "celery"):
        (venv_bin / name).write_text("#!/bin/sh\n")
        (venv_bin / name).chmod(0o755)
    out = root / "units"
    out.mkdir()
    for unit in unit_dir.iterdir():
        (out / unit.name).write_text(unit.read_text().replace("/opt/controlplane", str(root / "opt" / "controlplane")))
    return out


def parse(path: Path) -> dict[str, dict[str, list[str]]]:
    """{section: {key: [values, in order]}}: unit files repeat keys (EnvironmentFile=)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections
