"""The systemd units: valid for systemd, hardened, and stopping workers warm."""

import pytest
from django.conf import settings

from tests.deploy.systemd import UNIT_SOURCE, parse, render_with_stub_root, verify
from tests.workerproc import ROOT

SERVICES = [
    "controlplane-web.service",
    "controlplane-worker@.service",
    "controlplane-beat.service",
    "controlplane-console.service",
]
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectControlGroups": "yes",
    "RestrictSUIDSGID": "yes",
    "CapabilityBoundingSet": "",
    "ReadWritePaths": "/var/lib/controlplane",
}


def test_every_unit_passes_systemd_analyze_verify(tmp_path):
    result = verify(render_with_stub_root(UNIT_SOURCE, tmp_path))
    assert result.returncode == 0 and result.stderr == "" and result.stdout == "", result.stderr + result.stdout


def test_verify_catches_a_broken_unit(tmp_path):
    # The check above must be able to fail: systemd only warns (exit 0) on bad keys and values.
    units = render_with_stub_root(UNIT_SOURCE, tmp_path)
    beat = units / "controlplane-beat.service"
    beat.write_text(beat.read_text().replace("Type=simple", "Type=simpel"))
    result = verify(units)
    assert "Failed to parse service type" in result.stderr


@pytest.mark.parametrize("name", SERVICES)
def test_services_run_as_the_service_user_with_the_env_file_restart_and_hardening(name):
    unit = parse(UNIT_SOURCE / name)
    service = {key: values[-1] for key, values in unit["Service"].items()}
    assert service["User"] == service["Group"] == "controlplane"
    assert unit["Service"]["EnvironmentFile"][0] == "/etc/controlplane/controlplane.env"
    # Web restarts on failure; workers and beat always (celery_worker.py can exit 0 after an
    # unrecoverable broker error, tests/chaos/test_broker_restart.py)
    assert service["Restart"] == ("on-failure" if name == "controlplane-web.service" else "always")
    assert service["KillSignal"] == "SIGTERM"
    assert {key: service.get(key) for key in HARDENING} == HARDENING
    assert unit["Unit"]["PartOf"] == ["controlplane.target"]
    assert unit["Install"]["WantedBy"] == ["controlplane.target"]


def test_worker_unit_serves_its_instance_queue_and_shuts_down_warm():
    service = {
        key: values[-1] for key, values in parse(UNIT_SOURCE / "controlplane-worker@.service")["Service"].items()
    }
    assert "celery_worker.py --queues %i " in service["ExecStart"]  # %I would turn '-' into '/'
    # SIGTERM to the main process only: the pool children finish their tasks
    assert service["KillMode"] == "mixed"
    stop_timeout = int(service["TimeoutStopSec"])
    assert stop_timeout > settings.CELERY_TASK_TIME_LIMIT + 60


def test_beat_runs_the_singleton_scheduler_everywhere():
    [beat] = parse(UNIT_SOURCE / "controlplane-beat.service")["Service"]["ExecStart"]
    assert "--scheduler controlplane.beat:SingletonScheduler" in beat
    procfile = (ROOT / "Procfile").read_text()
    assert "--scheduler controlplane.beat:SingletonScheduler" in procfile
    from controlplane.celery import app

    assert app.conf.beat_scheduler == "controlplane.beat:SingletonScheduler"


def test_target_groups_web_and_beat():
    target = parse(UNIT_SOURCE / "controlplane.target")
    assert set(target["Unit"]["Wants"][0].split()) == {"controlplane-web.service", "controlplane-beat.service"}
    assert target["Install"]["WantedBy"] == ["multi-user.target"]
