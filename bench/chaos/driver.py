"""The chaos run's clients: drive VM lifecycles through the HTTP API only.

Each lifecycle is one VM: create (POST /api/v1/vm-requests/ with a plan that
needs no approval), then a few start/stop/reboot/snapshot/resize/rebuild/backup actions chosen from what
the VM's status allows, then DELETE. Every step waits for its operation to reach a
final state by polling /api/v1/operations/{id}/.

Requests are retried through outages (connection refused, 5xx): a POST whose
answer was lost may or may not have taken effect, so before posting again the
client looks for the operation (or VM) it may have created, and adopts it.
Everything the clients saw is kept in :class:`Ledger` for the invariant checks.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import requests

FINAL = {"succeeded", "failed", "cancelled"}
ACTIONS_FROM = {
    "active": ["stop", "reboot", "snapshot", "resize", "rebuild", "backup"],
    "stopped": ["start", "snapshot", "resize", "rebuild", "backup"],
}
# Actions posted elsewhere than /virtual-machines/<id>/<action>/: (path, operation action, body)
DAY2_POSTS = {
    "snapshot": ("snapshots/", "snapshot_create", lambda: {"name": f"chaos-{uuid.uuid4().hex[:8]}"}),
    "resize": ("resize/", "resize", dict),  # body from the catalogue: {"plan": id}
    "rebuild": ("rebuild/", "rebuild", dict),  # {"image": id}
    "backup": ("backups/", "backup_create", lambda: None),  # backup now (the plan's limit: a 409)
}
RETRY_STATUSES = {500, 502, 503, 504}


class GaveUp(Exception):
    """The API stayed unreachable (or kept answering 5xx) for the whole retry budget."""


@dataclass
class OpRecord:
    id: int
    vm: int
    action: str
    submitted: float
    final_state: str = ""
    finished: float | None = None
    adopted: bool = False


@dataclass
class Ledger:
    """What the clients did and saw; shared by all client threads."""

    ops: dict[int, OpRecord] = field(default_factory=dict)
    vms: dict[int, str] = field(default_factory=dict)  # vm id -> name
    http_errors: dict[str, int] = field(default_factory=dict)
    conflicts: int = 0
    timeouts: list[int] = field(default_factory=list)  # operations the clients stopped waiting for
    failures: list[str] = field(default_factory=list)  # lifecycles that ended abnormally
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)  # the run is being interrupted
    operator: Counter = field(default_factory=Counter)  # (cancel|retry, done|refused) -> count

    phase: str = ""  # what the chaos is doing right now ("Redis down", ...), set by the chaos thread

    def error(self, kind: str) -> None:
        key = f"{kind} ({self.phase or 'no outage'})"
        with self.lock:
            self.http_errors[key] = self.http_errors.get(key, 0) + 1

    def submitted(self) -> int:
        return len(self.ops)

    def finished(self) -> int:
        return sum(1 for op in self.ops.values() if op.final_state)


@dataclass
class Account:
    """One user of the API: a personal access token and the user's project."""

    email: str
    token: str
    project: str


class Client:
    def __init__(self, base_url: str, account: Account, ledger: Ledger, *, retry_for: float = 120, poll: float = 0.5):
        self.base = base_url.rstrip("/")
        self.account, self.ledger = account, ledger
        self.retry_for, self.poll = retry_for, poll
        self.http = requests.Session()
        self.http.headers.update({"Authorization": f"Bearer {account.token}", "Accept": "application/json"})

    # -- transport ---------------------------------------------------------------------------
    def _once(self, method: str, path: str, **kwargs) -> requests.Response | None:
        """One request; None when the answer was lost (connection error, timeout, 5xx)."""
        if self.ledger.stopping.is_set():
            raise GaveUp("the run is stopping")
        try:
            response = self.http.request(method, f"{self.base}{path}", timeout=30, **kwargs)
        except requests.RequestException as exc:
            self.ledger.error(type(exc).__name__)
            return None
        if response.status_code in RETRY_STATUSES:
            self.ledger.error(f"HTTP {response.status_code}")
            return None
        return response

    def get(self, path: str, **params) -> dict:
        deadline = time.monotonic() + self.retry_for
        delay = 0.2
        while True:
            response = self._once("GET", path, params=params or None)
            if response is not None:
                response.raise_for_status()
                return response.json()
            if time.monotonic() > deadline:
                raise GaveUp(f"GET {path}")
            time.sleep(delay)
            delay = min(delay * 2, 3)

    def post(self, method: str, path: str, body: dict | None, adopt) -> tuple[requests.Response | None, object]:
        """POST/DELETE with retries. ``adopt()`` is asked after a lost answer whether the
        request took effect (returns what it made, or None). Returns (response, adopted)."""
        deadline = time.monotonic() + self.retry_for
        delay = 0.2
        key = str(uuid.uuid4())
        lost = False
        while True:
            if lost:
                found = adopt()
                if found is not None:
                    return None, found
            response = self._once(method, path, json=body, headers={"Idempotency-Key": key})
            if response is not None and not (lost and response.status_code == 409):
                return response, None
            if response is not None:  # a 409 after a lost answer: probably our own first try
                found = adopt()
                if found is not None:
                    return None, found
                return response, None
            lost = True
            if time.monotonic() > deadline:
                raise GaveUp(f"{method} {path}")
            time.sleep(delay)
            delay = min(delay * 2, 3)

    # -- API steps -------------------------------------------------------------------------------
    def vm_by_name(self, name: str) -> dict | None:
        page = self.get("/api/v1/virtual-machines/", project__slug=self.account.project)
        while True:
            for vm in page["results"]:
                if vm["name"] == name and vm["status"] != "deleted":
                    return vm
            if not page.get("next"):
                return None
            page = self.get(page["next"].replace(self.base, "", 1))

    def latest_operation(self, vm_id: int, action: str) -> dict | None:
        page = self.get("/api/v1/operations/", vm=vm_id, action=action)
        return page["results"][0] if page["results"] else None

    def create(self, *, name: str, plan: int, image: int, hypervisor: int) -> OpRecord:
        body = {"project": self.account.project, "plan": plan, "image": image, "hypervisor": hypervisor, "name": name}
        started = time.time()
        response, adopted = self.post("POST", "/api/v1/vm-requests/", body, lambda: self.vm_by_name(name))
        if adopted is not None:
            vm_id = adopted["id"]
        elif response.status_code == 201:
            vm_id = response.json()["vm"]
        else:
            raise RuntimeError(f"create {name}: HTTP {response.status_code} {response.text[:300]}")
        with self.ledger.lock:
            self.ledger.vms[vm_id] = name
        op = self.latest_operation(vm_id, "create")
        return self._track(op, vm_id, "create", started, adopted is not None)

    def act(self, vm_id: int, action: str, known: set[int], payload: dict | None = None) -> OpRecord | None:
        """Start/stop/reboot/snapshot/resize/rebuild/backup/delete; None when the API refused (409: the
        VM moved on, a snapshot or backup over the plan's limit, a resize to the plan it has or to a
        smaller disk)."""
        started = time.time()
        tail, op_action, make_body = DAY2_POSTS.get(action, (f"{action}/", action, lambda: None))

        def body():
            return payload if payload is not None else make_body()

        def adopt():
            op = self.latest_operation(vm_id, op_action)
            return op if op is not None and op["id"] not in known else None

        path = f"/api/v1/virtual-machines/{vm_id}/"
        method = "DELETE" if action == "delete" else "POST"
        response, adopted = self.post(method, path if action == "delete" else f"{path}{tail}", body(), adopt)
        if adopted is not None:
            return self._track(adopted, vm_id, action, started, True)
        if response.status_code == 409:
            with self.ledger.lock:
                self.ledger.conflicts += 1
            return None
        if response.status_code != 202:
            raise RuntimeError(f"{action} vm {vm_id}: HTTP {response.status_code} {response.text[:300]}")
        return self._track(response.json()["operation"], vm_id, action, started, False)

    def _track(self, op: dict, vm_id: int, action: str, started: float, adopted: bool) -> OpRecord:
        record = OpRecord(id=op["id"], vm=vm_id, action=action, submitted=started, adopted=adopted)
        with self.ledger.lock:
            self.ledger.ops[record.id] = record
        return record

    def wait(self, record: OpRecord, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        delay = self.poll
        while time.monotonic() < deadline:
            state = self.get(f"/api/v1/operations/{record.id}/")["state"]
            if state in FINAL:
                record.final_state, record.finished = state, time.time()
                return state
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 1.5, 4.0)  # like a polite client: the API is not the thing under test here
        with self.ledger.lock:
            self.ledger.timeouts.append(record.id)
        return ""

    def vm(self, vm_id: int) -> dict:
        return self.get(f"/api/v1/virtual-machines/{vm_id}/")

    def _in_state(self, path: str, states: set[str]) -> bool | None:
        return True if self.get(path)["state"] in states else None

    def cancel(self, record: OpRecord) -> bool:
        """An impatient user: cancel (200), or be told it is too late (409)."""
        path = f"/api/v1/operations/{record.id}/"
        response, adopted = self.post("POST", f"{path}cancel/", None, lambda: self._in_state(path, {"cancelled"}))
        done = bool(adopted) or (response is not None and response.status_code == 200)
        with self.ledger.lock:
            self.ledger.operator[("cancel", "done" if done else "refused")] += 1
        return done

    def retry(self, record: OpRecord) -> bool:
        """Retry a failed operation (same operation, same idempotency key)."""
        path = f"/api/v1/operations/{record.id}/"
        response, adopted = self.post(
            "POST", f"{path}retry/", None, lambda: self._in_state(path, {"pending", "running"})
        )
        done = bool(adopted) or (response is not None and response.status_code == 202)
        with self.ledger.lock:
            self.ledger.operator[("retry", "done" if done else "refused")] += 1
        if done:
            record.final_state = ""
        return done


@dataclass
class Behaviour:
    """How the simulated users behave."""

    actions: int = 4  # start/stop/reboot/snapshot/resize/rebuild/backup between create and delete
    delete: bool = True  # False: the VM is left alive for the final comparison
    cancel_rate: float = 0.0  # chance that a user tries to cancel an operation soon after asking for it
    retry_failed: bool = True  # a failed operation is retried once (the operator's "retry")
    op_timeout: float = 300.0


def _follow(client: Client, record: OpRecord, known: set[int], rng: random.Random, how: Behaviour) -> str:
    """Wait for an operation to end; maybe cancel it first; retry it once if it failed."""
    known.add(record.id)
    if rng.random() < how.cancel_rate:
        time.sleep(rng.uniform(0, 3))
        client.cancel(record)
    state = client.wait(record, how.op_timeout)
    if state == "failed" and how.retry_failed and client.retry(record):
        state = client.wait(record, how.op_timeout)
    return state


def lifecycle(client: Client, *, n: int, catalogue: dict, how: Behaviour, rng: random.Random) -> None:
    """One VM: create, ``how.actions`` start/stop/reboot, then delete (unless ``how.delete`` is
    False: the VMs left alive are what the final database/hypervisor comparison looks at)."""
    name = f"chaos-{n:04d}"
    try:
        record = client.create(
            name=name, plan=catalogue["plan"], image=catalogue["image"], hypervisor=catalogue["hypervisor"]
        )
        known: set[int] = set()
        state = _follow(client, record, known, rng, how)
        if not state or (state != "succeeded" and (not how.delete or client.vm(record.vm)["status"] == "deleted")):
            return
        for _ in range(how.actions):
            vm = client.vm(record.vm)
            choices = ACTIONS_FROM.get(vm["status"])
            if not choices or vm["task_state"]:
                break
            action = rng.choice(choices)
            payload = None
            if action == "resize":  # up, down, or to the plan it has (a 409)
                payload = {"plan": rng.choice(catalogue.get("plans", [catalogue["plan"]]))}
            elif action == "rebuild":
                payload = {"image": rng.choice(catalogue.get("images", [catalogue["image"]]))}
            step = client.act(record.vm, action, known, payload)
            if step is not None and not _follow(client, step, known, rng, how):
                return
        if not how.delete:
            return
        for _ in range(3):  # a failed delete is tried again, like a user would
            step = client.act(record.vm, "delete", known)
            if step is None:
                if client.vm(record.vm)["status"] == "deleted":
                    return
                time.sleep(1)
                continue
            if _follow(client, step, known, rng, how) not in ("failed", "cancelled"):
                return
    except Exception as exc:  # recorded, checked later; one broken lifecycle must not stop the run
        with client.ledger.lock:
            client.ledger.failures.append(f"{name}: {type(exc).__name__}: {exc}")
