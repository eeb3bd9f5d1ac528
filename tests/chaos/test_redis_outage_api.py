"""The API while Redis is down: the Operation table is the outbox (the relay publishes what
could not be sent), so a Redis outage should delay work, not refuse requests."""

import pytest
import requests

from bench.stack import Stack

pytestmark = pytest.mark.worker

SEED = """
from accounts import services as accounts
from compute.models import Hypervisor, Image, Plan, VirtualMachine
user = accounts.user_create(email="outage@example.com", password=None)
hv = Hypervisor.objects.create(name="sim", kind="simulator", queue="sim", connection={"state_path": "/tmp/x"})
plan = Plan.objects.create(name="p", vcpus=1, memory_mib=512, disk_gib=10)
image = Image.objects.create(name="i", os_name="Linux")
vm = VirtualMachine.objects.create(project=user.projects.get(), owner=user, name="vm", plan=plan, image=image,
    hypervisor=hv, backend_id="sim-1", status="active", power_state="running")
print(vm.pk, accounts.token_create(user=user, name="t")[1])
"""

KNOWN_BUG = (
    "With CACHE_URL on Redis (the documented production set-up) every authenticated API request answers 500 "
    "while Redis is down: DRF's throttles (and the Idempotency-Key middleware) read the cache before the view "
    "runs, and Django's RedisCache raises on a lost connection. The outbox/relay design never gets to help."
)


def test_reads_and_actions_are_answered_while_redis_is_down(tmp_path):
    with Stack(tmp_path / "stack", database="cp_redis_outage") as stack:
        # Given the web server on the private stack, a user with a token and an active VM
        stack.manage("migrate", "--noinput")
        vm_id, token = stack.manage("shell", "-c", SEED).split()[-2:]
        stack.start_web(workers=1, threads=2)
        http = requests.Session()
        http.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
        assert http.get(f"{stack.web_url}/api/v1/virtual-machines/").status_code == 200

        # When Redis goes down
        stack.redis.stop()
        listing = http.get(f"{stack.web_url}/api/v1/virtual-machines/", timeout=30)
        reboot = http.post(f"{stack.web_url}/api/v1/virtual-machines/{vm_id}/reboot/", timeout=30)
        stack.redis.start()

        # Then reads still answer, and the action is accepted (its operation waits for the relay)
        if listing.status_code == 500 and reboot.status_code == 500:
            pytest.xfail(KNOWN_BUG)
        assert listing.status_code == 200, listing.text[:500]
        assert reboot.status_code == 202, reboot.text[:500]
        assert reboot.json()["operation"]["state"] == "pending"
