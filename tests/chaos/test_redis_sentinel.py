"""Redis under Sentinel: the master dies while operations are in flight; Sentinel promotes the
replica and the broker, the cache and the beat lock follow it. Every operation completes.

Real processes on loopback ports of our own (never the machine's shared Redis): two
redis-server (master + replica), one redis-sentinel, PostgreSQL, gunicorn, a Celery worker
and beat from bench.stack, all configured with ``sentinel://`` URLs.
"""

import pytest
import redis
import requests

from bench.stack import PrivateRedis, PrivateSentinel, Stack, wait_until
from workers.drivers.simulator.driver import SimulatorStore

pytestmark = pytest.mark.worker

MASTER = "cp-test"
VMS = 6
ENGINE = {
    "LEASE_SECONDS": 4,
    "RELAY_AFTER_SECONDS": 2,
    "RELAY_INTERVAL_SECONDS": 1,
    "REAPER_INTERVAL_SECONDS": 1,
    "POLL_MIN_SECONDS": 0.2,
    "POLL_MAX_SECONDS": 1,
    "RETRY_BASE_SECONDS": 0.5,
    "RETRY_MAX_SECONDS": 2,
}
SEED = """
from accounts import services as accounts
from compute.models import Hypervisor, Image, Plan, VirtualMachine
from workers.drivers.simulator.driver import SimulatorStore
state_path = "{state_path}"
user = accounts.user_create(email="sentinel@example.com", password=None)
hv = Hypervisor.objects.create(name="sim", kind="simulator", queue="sim",
    connection={{"state_path": state_path, "latency": 2}})
plan = Plan.objects.create(name="p", vcpus=1, memory_mib=512, disk_gib=10)
image = Image.objects.create(name="i", os_name="Linux")
store = SimulatorStore(state_path)
ids = [VirtualMachine.objects.create(project=user.projects.get(), owner=user, name=f"vm{{n}}", plan=plan,
    image=image, hypervisor=hv, backend_id=store.add_guest(f"vm{{n}}"), status="active", power_state="running").pk
    for n in range({vms})]
print(",".join(map(str, ids)), accounts.token_create(user=user, name="t")[1])
"""


def test_operations_in_flight_complete_when_sentinel_fails_the_master_over(tmp_path, monkeypatch):
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    master = PrivateRedis(tmp_path / "redis-a")
    replica = PrivateRedis(tmp_path / "redis-b", replica_of=master.port)
    sentinel = PrivateSentinel(tmp_path / "sentinel", name=MASTER, master_port=master.port)
    env = {
        "CELERY_BROKER_URL": sentinel.url(0),
        "CACHE_URL": sentinel.url(2),
        "REDIS_SENTINEL_MASTER": MASTER,
        "BEAT_LOCK_TTL_SECONDS": "3",
    }
    try:
        for server in (master, replica, sentinel):
            server.start()
        with Stack(tmp_path / "stack", database="cp_sentinel", engine=ENGINE, extra_env=env) as stack:
            # Given the stack on Sentinel URLs, and active VMs on a hypervisor whose actions take 2 s
            stack.manage("migrate", "--noinput")
            seed = SEED.format(state_path=tmp_path / "sim.sqlite3", vms=VMS)
            ids, token = stack.manage("shell", "-c", seed).split()[-2:]
            vm_ids = ids.split(",")
            stack.start_web(workers=1, threads=4)
            worker = stack.start_worker("w1", queues="control,sim", concurrency=4)
            stack.start_beat()
            http = requests.Session()
            http.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
            api = f"{stack.web_url}/api/v1"

            # When every VM is stopped and the operations are under way on the hypervisor
            operations = [http.post(f"{api}/virtual-machines/{vm}/stop/").json()["operation"]["id"] for vm in vm_ids]

            exits = []

            def current():
                if not worker.alive():  # as systemd's Restart=always does
                    exits.append(worker.proc.returncode)
                    worker.start()
                return [http.get(f"{api}/operations/{op}/", timeout=10).json() for op in operations]

            def states():
                return [operation["state"] for operation in current()]

            wait_until(lambda: all(o["task_ref"] for o in current()), 60, "stops submitted to the hypervisor")
            assert "running" in states()  # in flight: their poll messages wait in Redis

            # and the Redis master dies
            master.kill()
            wait_until(lambda: sentinel.master_port_now() == replica.port, 30, "Sentinel promoting the replica")

            # Then every operation completes, on the hypervisor too
            wait_until(lambda: all(s in ("succeeded", "failed") for s in states()), 60, "operations finished")
            assert states() == ["succeeded"] * VMS
            vms = [http.get(f"{api}/virtual-machines/{vm}/").json() for vm in vm_ids]
            assert {(vm["status"], vm["power_state"]) for vm in vms} == {("stopped", "stopped")}
            guests = SimulatorStore(tmp_path / "sim.sqlite3").guests()
            assert [guest["power_state"] for guest in guests] == ["stopped"] * VMS
            # and each stop was carried out once: a stop call beyond one per operation (a claim that
            # found no recorded handle: its worker was lost between calling stop and storing the
            # answer, or its lease ran out meanwhile) only ever joined the stop already under way
            store = SimulatorStore(tmp_path / "sim.sqlite3")
            reclaimed = sum(1 for operation in current() if operation["attempts"] > 1)
            assert VMS <= store.call_counts()["stop"] <= VMS + reclaimed
            assert store.read().execute("SELECT COUNT(*) FROM tasks WHERE action = 'stop'").fetchone()[0] == VMS

            # and after the failover new work is accepted, published and done through the new master
            start = http.post(f"{api}/virtual-machines/{vm_ids[0]}/start/", headers={"Idempotency-Key": "after"})
            replay = http.post(f"{api}/virtual-machines/{vm_ids[0]}/start/", headers={"Idempotency-Key": "after"})
            assert start.status_code == 202 and replay.headers.get("Idempotent-Replayed") == "true"
            started = start.json()["operation"]["id"]
            wait_until(
                lambda: http.get(f"{api}/operations/{started}/").json()["state"] == "succeeded", 60, "start after"
            )
            # the cache and the beat lock live on the new master
            promoted = redis.Redis(host="127.0.0.1", port=replica.port)
            assert promoted.dbsize() > 0 and redis.Redis(host="127.0.0.1", port=replica.port, db=2).dbsize() > 0
            assert promoted.exists("controlplane:beat:leader")
            assert http.get(f"{stack.web_url}/readyz").json()["checks"]["broker"]["ok"] is True
            # a worker the failover stopped said so with its exit status (a supervisor restarts it)
            assert 0 not in exits, worker.tail()
    finally:
        for server in (sentinel, replica, master):
            server.stop()
