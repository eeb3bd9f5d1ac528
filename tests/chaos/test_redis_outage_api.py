"""The API while Redis is down: the Operation table is the outbox (the relay publishes what
could not be sent), so a Redis outage delays work, it does not refuse requests.

Runs on bench.stack's private Redis (its own redis-server on its own port), never the
machine's shared one: stopping it here touches nobody else.
"""

import pytest
import requests

from bench.stack import Stack, wait_until

pytestmark = pytest.mark.worker

SEED = """
from accounts import services as accounts
from compute.models import Hypervisor, Image, Plan, VirtualMachine
from workers.drivers.simulator.driver import SimulatorStore
state_path = "{state_path}"
user = accounts.user_create(email="outage@example.com", password=None)
hv = Hypervisor.objects.create(name="sim", kind="simulator", queue="sim", connection={{"state_path": state_path}})
plan = Plan.objects.create(name="p", vcpus=1, memory_mib=512, disk_gib=10)
image = Image.objects.create(name="i", os_name="Linux")
backend_id = SimulatorStore(state_path).add_guest("vm")
vm = VirtualMachine.objects.create(project=user.projects.get(), owner=user, name="vm", plan=plan, image=image,
    hypervisor=hv, backend_id=backend_id, status="active", power_state="running")
print(vm.pk, accounts.token_create(user=user, name="t")[1])
"""
CACHE_WARNING = b"cache: Redis unreachable"
ENGINE = {"RELAY_AFTER_SECONDS": 1, "RELAY_INTERVAL_SECONDS": 1, "POLL_MIN_SECONDS": 0.2}


def test_reads_and_actions_are_answered_while_redis_is_down(tmp_path, monkeypatch):
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    with Stack(tmp_path / "stack", database="cp_redis_outage", engine=ENGINE) as stack:
        # Given the web server on the private stack, a user with a token and an active VM
        stack.manage("migrate", "--noinput")
        vm_id, token = stack.manage("shell", "-c", SEED.format(state_path=tmp_path / "sim.sqlite3")).split()[-2:]
        web = stack.start_web(workers=1, threads=2)
        http = requests.Session()
        http.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
        assert http.get(f"{stack.web_url}/api/v1/virtual-machines/").status_code == 200

        # When Redis goes down
        stack.redis.stop()
        listings = [http.get(f"{stack.web_url}/api/v1/virtual-machines/", timeout=30) for _ in range(5)]
        reboot = http.post(
            f"{stack.web_url}/api/v1/virtual-machines/{vm_id}/reboot/", headers={"Idempotency-Key": "k1"}, timeout=30
        )
        ready = http.get(f"{stack.web_url}/readyz", timeout=30)

        # Then reads still answer, the action is accepted (its operation waits for the relay),
        # /readyz tells the load balancer the broker is down, and the log says so once, not per request
        assert [r.status_code for r in listings] == [200] * 5, listings[-1].text[:500]
        assert reboot.status_code == 202, reboot.text[:500]
        operation = reboot.json()["operation"]
        assert operation["state"] == "pending"
        assert ready.status_code == 503
        assert ready.json()["checks"]["broker"]["ok"] is False
        log = web.log.read_bytes()
        assert log.count(CACHE_WARNING) == 1, web.tail()
        assert b"could not publish execute_operation" in log

        # When Redis is back and a worker and beat run
        stack.redis.start()
        stack.start_worker("w1", queues="control,sim", concurrency=2)
        stack.start_beat()

        # Then the relay publishes the operation the request could not, and it completes
        def finished():
            state = http.get(f"{stack.web_url}/api/v1/operations/{operation['id']}/", timeout=10).json()["state"]
            return state if state in ("succeeded", "failed") else None

        assert wait_until(finished, 90, "the relayed reboot") == "succeeded"
