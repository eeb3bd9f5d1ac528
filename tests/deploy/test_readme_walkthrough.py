"""The README's "The API in five commands" block, run verbatim with bash against `make up`'s
embedded default (SQLite, filesystem broker, the seeded simulator) served by `make processes`:
web, worker, beat and console proxy, as a new user would run it. The only inputs are the ones the
README asks for: an exported TOKEN (made here for demo@example.com, as the portal's API tokens
page would), API when the server is not on 127.0.0.1:8000, and a key in ~/.ssh/id_ed25519.pub."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.deploy.conftest import make_up_processes
from tests.workerproc import ROOT


def readme_block(heading: str) -> str:
    """The first ```sh block after ``heading`` in README.md."""
    text = (Path(ROOT) / "README.md").read_text()
    section = text[text.index(heading) :]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_the_readme_api_walkthrough_runs_verbatim_on_make_up(tmp_path):
    block = readme_block("## The API in five commands")
    assert "uuidgen" not in block and "demos-project" not in block  # nothing a fresh machine lacks, no fixed slug

    make, bind, log, env = make_up_processes(tmp_path)
    try:
        manage = [sys.executable, "manage.py", "shell", "-c", MAKE_TOKEN]
        made = subprocess.run(manage, cwd=ROOT, env=env, check=True, capture_output=True)
        token = made.stdout.decode().split()[-1]  # after the shell's "N objects imported" line
        assert token.startswith("cpat_")
        home = tmp_path / "home"
        (home / ".ssh").mkdir(parents=True)
        public = (
            Ed25519PrivateKey.generate()
            .public_key()
            .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        )
        (home / ".ssh" / "id_ed25519.pub").write_text(public.decode() + " me@laptop\n")
        shell_env = {"PATH": os.environ["PATH"], "HOME": str(home), "TOKEN": token, "API": f"http://{bind}/api/v1"}
        run = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", block], env=shell_env, capture_output=True, text=True, timeout=240
        )
    finally:
        os.killpg(make.pid, signal.SIGINT)
        try:
            make.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)

    output = run.stdout + run.stderr
    assert run.returncode == 0, output + log.read_text(errors="replace")[-3000:]
    assert re.search(r"^project: priyas-project$", output, re.M), output
    vm = re.search(r"^vm: (\d+)$", output, re.M)
    assert vm, output
    assert "('create', 'succeeded')" in output
    assert re.search(r"^HTTP/1\.1 202 ", output, re.M), output
    assert re.search(r"^Location: .*/api/v1/operations/\d+/", output, re.M), output


MAKE_TOKEN = """
from accounts.models import User
from accounts.services import token_create
print(token_create(user=User.objects.get(email="demo@example.com"), name="readme")[1])
"""
