"""deploy/install.sh in scratch mode: a real install (virtualenv, migrate, static,
units) under a temporary prefix, then the installed stack behind nginx."""

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg
import pytest
import requests
import urllib3
from cryptography.fernet import Fernet
from django.db import connection

from tests.deploy.conftest import free_port, wait_until
from tests.deploy.systemd import verify
from tests.workerproc import ROOT

INSTALL = ROOT / "deploy" / "install.sh"
HOST = "cloud.example.com"


def run_install(prefix: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["bash", str(INSTALL), "--prefix", str(prefix), "--no-apt", "--no-systemd", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV"}},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def read_env_file(path: Path) -> dict:
    """KEY=VALUE lines, as systemd's EnvironmentFile= reads them."""
    env = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", ";")) and "=" in line:
            key, _, value = line.partition("=")
            env[key] = value
    return env


class Installed:
    def __init__(self, prefix: Path, database_url: str, first_run: str):
        self.prefix, self.database_url, self.first_run = prefix, database_url, first_run
        self.app = prefix / "opt/controlplane/app"
        self.venv = prefix / "opt/controlplane/venv"
        self.static = prefix / "opt/controlplane/static"
        self.env_file = prefix / "etc/controlplane/controlplane.env"
        self.units = prefix / "etc/systemd/system"
        self.nginx_site = prefix / "etc/nginx/sites-available/controlplane.conf"

    def env(self, **extra) -> dict:
        base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
        return {**base, **read_env_file(self.env_file), **extra}


@pytest.fixture(scope="module")
def installed(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock():
        settings_dict = connection.settings_dict
    name = f"{settings_dict['NAME']}_install"
    admin_url = (
        f"postgresql://{settings_dict['USER']}@{settings_dict['HOST'] or '127.0.0.1'}:{settings_dict['PORT'] or 5432}"
    )
    with psycopg.connect(f"{admin_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = f"{admin_url.replace('postgresql://', 'postgres://')}/{name}"
    prefix = tmp_path_factory.mktemp("prefix")
    broker_url = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
    first = run_install(
        prefix,
        "--hosts",
        HOST,
        "--database-url",
        database_url,
        "--broker-url",
        broker_url,
        "--cache-url",
        broker_url,
    )
    yield Installed(prefix, database_url, first.stdout)
    with psycopg.connect(f"{admin_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_scratch_install_lays_out_code_virtualenv_settings_static_and_units(installed):
    assert (installed.app / "manage.py").exists() and not (installed.app / "tests").exists()
    assert os.access(installed.venv / "bin" / "gunicorn", os.X_OK)
    # The environment file: from the example, fresh secrets, the given addresses, not world-readable
    env = read_env_file(installed.env_file)
    assert installed.env_file.stat().st_mode & 0o777 == 0o640
    assert env["CONTROLPLANE_ENV"] == "production" and len(env["SECRET_KEY"]) >= 50
    Fernet(env["FIELD_ENCRYPTION_KEY"])  # a valid key
    assert len(env["METRICS_TOKEN"]) >= 32 and "=__GENERATE__" not in installed.env_file.read_text()
    assert env["DATABASE_URL"] == installed.database_url
    assert env["CACHE_URL"] == env["CELERY_BROKER_URL"] and env["TRUSTED_PROXY_COUNT"] == "1"
    assert env["ALLOWED_HOSTS"] == HOST and env["CSRF_TRUSTED_ORIGINS"] == f"https://{HOST}"
    assert env["CONTROLPLANE_VAR_DIR"] == str(installed.prefix / "var/lib/controlplane")
    # Migrated, static files collected with their manifest, units and the nginx sample in place
    with psycopg.connect(installed.database_url.replace("postgres://", "postgresql://", 1)) as conn:
        applied = {row[0] for row in conn.execute("SELECT app FROM django_migrations")}
    assert {"accounts", "compute", "workers", "audit"} <= applied
    assert (installed.static / "staticfiles.json").exists()
    assert (installed.static / "admin" / "css" / "base.css").exists()
    assert sorted(p.name for p in installed.units.iterdir()) == sorted(
        p.name for p in (ROOT / "deploy/systemd").iterdir()
    )
    assert installed.nginx_site.exists()
    assert "systemd: skipped" in installed.first_run


def test_a_second_run_changes_nothing_and_keeps_the_secrets(installed):
    before = installed.env_file.read_text()
    again = run_install(installed.prefix)
    assert installed.env_file.read_text() == before
    assert "keeping" in again.stdout and "requirements unchanged" in again.stdout
    assert "units: installed" not in again.stdout  # identical units are not rewritten
    assert "No migrations to apply" in again.stdout


def test_installed_units_point_at_real_executables_and_verify(installed):
    text = (installed.units / "controlplane-worker@.service").read_text()
    assert f"ExecStart={installed.venv}/bin/python {installed.app}/celery_worker.py --queues %i" in text
    result = verify(installed.units)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_installed_manage_sh_runs_check_deploy_and_engine_status_with_the_env_file(installed):
    def manage(*args):
        return subprocess.run(
            [str(installed.app / "deploy/manage.sh"), *args],
            env={"PATH": os.environ["PATH"], "CONTROLPLANE_ENV_FILE": str(installed.env_file)},
            capture_output=True,
            text=True,
            timeout=120,
        )

    check = manage("check", "--deploy", "--fail-level", "WARNING")
    assert check.returncode == 0, check.stdout + check.stderr
    status = manage("engine_status")
    assert status.returncode == 0 and "Live workers" in status.stdout, status.stdout + status.stderr


def nginx_binary() -> str:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    assert path, "nginx is missing: run `bash .ci/system-packages.sh` (apt-get install nginx)"
    return path


def nginx_config(installed, work: Path, *, http: int, https: int, upstream: int) -> Path:
    """The installed site, moved to loopback ports, a self-signed certificate and files under ``work``."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={HOST}",
         "-keyout", str(work / "key.pem"), "-out", str(work / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    site = installed.nginx_site.read_text()
    site = site.replace("listen 80;", f"listen 127.0.0.1:{http};").replace("listen [::]:80;", "")
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl http2;")
    site = site.replace("listen [::]:443 ssl http2;", "").replace("127.0.0.1:8000", f"127.0.0.1:{upstream}")
    site = re.sub(r"/etc/letsencrypt/live/[^/]+/fullchain.pem", str(work / "cert.pem"), site)
    site = re.sub(r"/etc/letsencrypt/live/[^/]+/privkey.pem", str(work / "key.pem"), site)
    site = site.replace("/var/log/nginx/", f"{work}/")
    (work / "site.conf").write_text(site)
    conf = work / "nginx.conf"
    user = "user root;\n" if os.getuid() == 0 else ""  # pytest's tmp dirs are private to their owner
    conf.write_text(
        f"{user}worker_processes 1;\nerror_log {work}/error.log;\npid {work}/nginx.pid;\nevents {{}}\n"
        f"http {{\n  access_log {work}/access.log;\n  client_body_temp_path {work};\n  proxy_temp_path {work};\n"
        f"  include {work}/site.conf;\n}}\n"
    )
    return conf


def test_the_installed_stack_serves_through_nginx(installed, tmp_path):
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    web_port, http_port, https_port = free_port(), free_port(), free_port()
    queue = f"deploy-install-{web_port}"
    processes = []

    def start(args, log_name, **env):
        log = open(tmp_path / log_name, "wb")
        proc = subprocess.Popen(
            args, cwd=installed.app, env=installed.env(**env), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        processes.append(proc)
        return proc

    try:
        # Given the installed worker, web and nginx, started the way their units start them
        start([str(installed.venv / "bin/python"), "celery_worker.py", "--queues", queue, "--concurrency", "1"],
              "worker.log")  # fmt: skip
        start([str(installed.venv / "bin/gunicorn"), "controlplane.wsgi", "--config", "deploy/gunicorn.conf.py"],
              "web.log", WEB_BIND=f"127.0.0.1:{web_port}", WEB_WORKERS="1")  # fmt: skip
        conf = nginx_config(installed, tmp_path, http=http_port, https=https_port, upstream=web_port)
        subprocess.run([nginx_binary(), "-t", "-c", str(conf)], check=True, capture_output=True)
        start([nginx_binary(), "-c", str(conf), "-g", "daemon off;"], "nginx.log")
        base = f"https://127.0.0.1:{https_port}"
        session = requests.Session()
        session.headers["Host"] = HOST
        session.trust_env = False  # a CA bundle from the environment would override verify=False
        session.verify = False

        def ready():
            try:  # the first request loads Django in the gunicorn worker: slow on a busy machine
                return session.get(f"{base}/readyz", timeout=30).status_code == 200
            except requests.RequestException:
                return False

        wait_until(ready, 90, interval=0.5, message="/readyz through nginx")

        # Then: plain HTTP redirects to HTTPS
        plain = requests.get(f"http://127.0.0.1:{http_port}/", headers={"Host": HOST}, allow_redirects=False)
        assert plain.status_code == 301 and plain.headers["Location"] == f"https://{HOST}/"
        # Django sees HTTPS through the proxy headers: a page renders, no redirect loop, HSTS set
        login = session.get(f"{base}/accounts/login/", allow_redirects=False)
        assert login.status_code == 200, login.text[:500]
        assert "max-age=" in login.headers["Strict-Transport-Security"]
        # nginx makes the request id (a client's own X-Request-ID is not reused: only a listed
        # load balancer's is); Django returns it
        assert re.fullmatch(r"[0-9a-f]{32}", login.headers["X-Request-ID"])
        chosen = session.get(f"{base}/healthz", headers={"X-Request-ID": "lb-7"}).headers["X-Request-ID"]
        assert chosen != "lb-7" and re.fullmatch(r"[0-9a-f]{32}", chosen)
        # Static files come from disk through nginx, cached for good
        css = session.get(f"{base}/static/admin/css/base.css")
        assert css.status_code == 200 and "immutable" in css.headers["Cache-Control"]
        assert "X-Request-ID" not in css.headers
        # /metrics wants the token from the environment file
        assert session.get(f"{base}/metrics").status_code == 401
        token = read_env_file(installed.env_file)["METRICS_TOKEN"]
        metrics = session.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"})
        assert metrics.status_code == 200 and "controlplane_workers_alive 1.0" in metrics.text
        # gunicorn's access log is JSON carrying the same request id
        access = [
            json.loads(line) for line in (tmp_path / "web.log").read_text().splitlines() if '"gunicorn.access"' in line
        ]
        assert any(line.get("request_id") == chosen and line["path"] == "/healthz" for line in access)
    finally:
        for proc in reversed(processes):
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in processes:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
