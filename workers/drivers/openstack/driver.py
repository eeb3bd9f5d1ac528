"""The OpenStack driver: Nova servers through openstacksdk, submit then poll.

``backend_id`` is the server's UUID, which is also the handle's ``ref``. Servers
are built in their tenant's OpenStack project (``VMSpec.tenant``, from tenant
provisioning); everything else (lookups, listings, power actions, deletes) goes
through the login's connection, which needs the admin role to see every project.

- create: flavor from the plan (``settings.flavors[plan]``, else the flavor with
  exactly its vCPUs, RAM and disk), image from the image reference, the tenant's
  network and security group, a key pair named after the SSH key's fingerprint,
  user data; metadata ``cp_idempotency_key`` and tags ``<managed_tag>`` and
  ``cp-<key>``. Poll: ``BUILD`` → ``ACTIVE`` done; ``ERROR`` fails with nova's fault.
- start / stop: already in the wanted state → done at once; a 409 answer whose
  server turns out to be there already counts as done, otherwise it is "busy"
  (transient). Nova does its own graceful shutdown then power-off on stop (its
  ``shutdown_timeout``); the plan's ``hard_stop_after`` cannot be passed per call.
- reboot: soft; a soft reboot still running after ``reboot_timeout_seconds`` is
  replaced by a hard one.
- delete: gone (404, or status ``DELETED``) counts as deleted. Floating IPs we made for the
  server are released first (floating.py).
- per-project networks behind a router (``external_network``): once the server is active a
  floating IP is allocated on the external network and associated with its port; it is the
  first of the VM's addresses (its public one).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from keystoneauth1 import discover

from ..base import (
    Capability,
    ConsoleProtocol,
    ConsoleTarget,
    Driver,
    DriverTask,
    HypervisorVM,
    PermanentDriverError,
    PowerState,
    TaskStatus,
    TenantSpec,
    TransientDriverError,
    VMMetrics,
    VMSpec,
    register,
)
from . import floating, metrics, servers
from .backups import BACKUP_ACTIONS, OpenStackBackups
from .client import Code, OpenStackClient, is_not_found, translate
from .day2 import SNAPSHOT_ACTIONS, OpenStackDay2, OpenStackSnapshots
from .settings import OpenStackSettings
from .tenants import TenantProvisioner

logger = logging.getLogger(__name__)

TARGET_STATUS = {"start": "ACTIVE", "stop": "SHUTOFF"}


@register("openstack")
class OpenStackDriver(OpenStackDay2, OpenStackSnapshots, OpenStackBackups, Driver):
    """Settings: see ``OpenStackSettings`` (a clouds.yaml cloud entry plus ours). Credentials:
    password (+ username), or application_credential_id + application_credential_secret."""

    supports_tenants = True
    # resize_server + confirm/revert, rebuild_server, image snapshots: day2.py; createBackup: backups.py
    capabilities = frozenset(
        {
            Capability.CONSOLE,
            Capability.METRICS,
            Capability.RESIZE,
            Capability.REBUILD,
            Capability.SNAPSHOTS,
            Capability.BACKUPS,
        }
    )
    resize_live = frozenset()  # nova's resize is a cold migration: the guest always restarts

    def __init__(self, config):
        super().__init__(config)
        self.settings = OpenStackSettings.from_config(config.name, config.settings, config.credentials)
        self.client = OpenStackClient(config.name, self.settings)

    # -- reads -------------------------------------------------------------------
    def _server(self, backend_id: str) -> Any | None:
        """The server, or None when nova says it does not exist (404 or status DELETED)."""
        try:
            with translate(f"reading server {backend_id}"):
                server = self.client.conn.compute.get_server(backend_id)
        except PermanentDriverError as exc:
            if is_not_found(exc):
                return None
            raise
        return None if servers.is_gone(server) else server

    def get(self, backend_id: str) -> HypervisorVM | None:
        server = self._server(backend_id)
        return servers.to_vm(server) if server is not None else None

    def _list(self, **query) -> list[Any]:
        with translate("listing servers"):
            found = list(
                self.client.conn.compute.servers(details=True, all_projects=self.settings.all_projects, **query)
            )
        return [server for server in found if not servers.is_gone(server)]

    def find_by_key(self, idempotency_key: str) -> HypervisorVM | None:
        for server in self._list(tags=servers.key_tag(idempotency_key)):
            if (server.metadata or {}).get(servers.KEY_METADATA) == idempotency_key:
                return servers.to_vm(server)
        return None

    def list_all(self) -> list[HypervisorVM]:
        """One paginated listing of every server we built (tagged ``managed_tag``), in all projects."""
        return [servers.to_vm(server) for server in self._list(tags=self.settings.managed_tag)]

    def metrics(self) -> list[VMMetrics]:
        """One listing, then nova's diagnostics of each running server (nova has no bulk call),
        until ``metrics_budget_seconds`` (default 20) is spent: later servers get a gap."""
        deadline = time.monotonic() + float(self.config.settings.get("metrics_budget_seconds", 20))
        readings = []
        for server in self._list(tags=self.settings.managed_tag):
            power = servers.power_state(server)
            if power != PowerState.RUNNING or time.monotonic() > deadline:
                continue
            try:
                with translate(f"reading diagnostics of server {server.id}"):
                    diagnostics = self.client.conn.compute.get_server_diagnostics(server.id)
            except PermanentDriverError as exc:  # gone or not running meanwhile: no reading
                logger.info("no diagnostics for %s: %s", server.id, exc.message)
                continue
            readings.append(metrics.reading(server.id, power, diagnostics, at=time.time()))
        return readings

    def check(self) -> dict[str, Any]:
        conn = self.client.conn
        with translate("compute version discovery"):
            endpoint = conn.compute.get_endpoint_data()
            flavors = sorted(f.name for f in conn.compute.flavors(details=True))
        facts: dict[str, Any] = {
            "compute_endpoint": endpoint.url if endpoint else None,
            "microversions": _range(endpoint.min_microversion, endpoint.max_microversion) if endpoint else None,
            "auth_type": self.settings.auth_type,
            "region": self.settings.cloud.get("region_name"),
            "project_id": self.client.own_project_id(),
            "flavors": flavors,
            "tenant_projects": self.settings.tenant_projects,
        }
        if self.settings.external_network and not self.settings.network_id:
            self.client.require("network")
            with translate("looking up the external network"):
                net = self.settings.external_network
                found = list(conn.network.networks(name=net, is_router_external=True)) or list(
                    conn.network.networks(id=net, is_router_external=True)
                )
            if not found:
                facts["warning"] = f"external_network {net!r} is not an external network of this cloud."
        return facts

    # -- tenants -----------------------------------------------------------------
    def provision_tenant(self, tenant: TenantSpec) -> DriverTask:
        """Synchronous: a handful of quick identity/network calls, each looked up first (see tenants.py)."""
        data = TenantProvisioner(self.client, self.settings, tenant).run()
        return DriverTask(ref=f"tenant:{data['project_id']}", done=True, data={"action": "provision", "tenant": data})

    # -- create ------------------------------------------------------------------
    def create(self, spec: VMSpec) -> DriverTask:
        existing = self.find_by_key(spec.idempotency_key)
        if existing is not None:
            return self._handle("create", existing.backend_id, name=spec.name, **self._floating_wanted(spec))
        network_id = spec.tenant.get("network_id")
        if not network_id:
            raise PermanentDriverError(
                f"{self.config.name}: the project has no network here yet (tenant provisioning has not run).",
                code=Code.MISCONFIGURED,
            )
        conn = self.client.for_project(spec.tenant.get("project_id"))
        attrs: dict[str, Any] = {
            "name": spec.name,
            "flavor_id": self._flavor_id(spec),
            "image_id": spec.image_ref,
            "networks": [{"uuid": network_id}],
            "metadata": {servers.KEY_METADATA: spec.idempotency_key},
            "tags": [self.settings.managed_tag, servers.key_tag(spec.idempotency_key)],
        }
        if spec.extra.get("project"):
            attrs["metadata"][servers.PROJECT_METADATA] = str(spec.extra["project"])[:255]
        if spec.tenant.get("security_group_id"):
            attrs["security_groups"] = [{"name": spec.tenant["security_group_id"]}]
        if spec.ssh_public_key.strip():
            attrs["key_name"] = self._keypair(conn, spec.ssh_public_key)
        if spec.user_data:
            attrs["user_data"] = servers.encode_user_data(spec.user_data)
        if self.settings.availability_zone:
            attrs["availability_zone"] = self.settings.availability_zone
        with translate(f"creating server {spec.name}"):
            server = conn.compute.create_server(**attrs)
        logger.info("openstack %s: server %s (%s) submitted", self.config.name, spec.name, server.id)
        return self._handle("create", server.id, name=spec.name, **self._floating_wanted(spec))

    @staticmethod
    def _floating_wanted(spec: VMSpec) -> dict[str, Any]:
        """Per-project networks behind a router get a floating IP once the server is active."""
        if not spec.tenant.get("external_network_id"):
            return {}
        return {"floating_network_id": spec.tenant["external_network_id"], "project_id": spec.tenant.get("project_id")}

    def _flavor_id(self, spec: VMSpec) -> str:
        conn, plan = self.client.conn, spec.extra.get("plan")
        wanted = self.settings.flavors.get(plan) if plan else None
        if wanted:
            with translate(f"looking up flavor {wanted}"):
                flavor = conn.compute.find_flavor(wanted, ignore_missing=True)
            if flavor is None:
                raise PermanentDriverError(
                    f"Flavor {wanted!r} (settings.flavors for plan {plan}) does not exist on {self.config.name}.",
                    code=Code.NO_FLAVOR,
                )
            return flavor.id
        with translate("listing flavors"):
            flavors = list(conn.compute.flavors(details=True))
        flavor = servers.pick_flavor(flavors, vcpus=spec.vcpus, memory_mib=spec.memory_mib, disk_gib=spec.disk_gib)
        if flavor is None:
            raise PermanentDriverError(
                f"No flavor on {self.config.name} has {spec.vcpus} vCPUs, {spec.memory_mib} MiB RAM and "
                f"{spec.disk_gib} GiB disk (plan {plan or '?'}): an operator must add one or map the plan "
                "in settings.flavors.",
                code=Code.NO_FLAVOR,
            )
        return flavor.id

    def _keypair(self, conn, public_key: str) -> str:
        """Our key pair for this SSH key (named after its fingerprint): found, or created."""
        name = servers.keypair_name(public_key)
        try:
            with translate(f"looking up key pair {name}"):
                conn.compute.get_keypair(name)
            return name
        except PermanentDriverError as exc:
            if not is_not_found(exc):
                raise
        try:
            with translate(f"creating key pair {name}"):
                conn.compute.create_keypair(name=name, public_key=public_key.strip())
        except TransientDriverError as exc:
            if exc.code != Code.BUSY:  # 409: created meanwhile by a concurrent create
                raise
        return name

    # -- actions on an existing server ---------------------------------------------
    def _handle(self, action: str, backend_id: str, *, done: bool = False, **data) -> DriverTask:
        return DriverTask(ref=backend_id, backend_id=backend_id, done=done, data={"action": action, **data})

    def _existing(self, backend_id: str) -> Any:
        server = self._server(backend_id)
        if server is None:
            raise PermanentDriverError(
                f"Server {backend_id} does not exist on {self.config.name}.", code=Code.NOT_FOUND
            )
        return server

    def _power(self, action: str, backend_id: str, call) -> DriverTask:
        """Start or stop: done at once when already there; a 409 is "already there", "busy"
        (transient), or a server in ERROR, which no retry changes."""
        target = TARGET_STATUS[action]
        if self._existing(backend_id).status == target:
            return self._handle(action, backend_id, done=True)
        try:
            with translate(f"{action} of server {backend_id}"):
                call(backend_id)
        except TransientDriverError as exc:
            if exc.code != Code.BUSY:
                raise
            server = self._existing(backend_id)
            if server.status == "ERROR":
                message = f"Cannot {action} server {backend_id}: it is in ERROR ({servers.fault_message(server)})."
                raise PermanentDriverError(message, code=Code.FAULT) from exc
            if server.status != target:
                raise
            return self._handle(action, backend_id, done=True)
        return self._handle(action, backend_id)

    def start(self, backend_id: str) -> DriverTask:
        return self._power("start", backend_id, self.client.conn.compute.start_server)

    def stop(self, backend_id: str, *, force: bool = False, hard_stop_after: int | None = None) -> DriverTask:
        """Nova's stop is already a graceful shutdown followed by a power-off after its own
        ``shutdown_timeout``; ``force`` and ``hard_stop_after`` have no per-call equivalent."""
        return self._power("stop", backend_id, self.client.conn.compute.stop_server)

    def reboot(self, backend_id: str) -> DriverTask:
        server = self._existing(backend_id)
        if servers.power_state(server) != PowerState.RUNNING:
            raise PermanentDriverError(f"Cannot reboot server {backend_id}: it is {server.status}.", code=Code.INVALID)
        self._reboot(backend_id, "SOFT")
        return self._handle(
            "reboot", backend_id, type="SOFT", hard_at=time.time() + self.settings.reboot_timeout_seconds
        )

    def _reboot(self, backend_id: str, kind: str) -> None:
        with translate(f"{kind.lower()} reboot of server {backend_id}"):
            self.client.conn.compute.reboot_server(backend_id, kind)

    def delete(self, backend_id: str) -> DriverTask:
        if self.settings.external_network and not self.settings.network_id:  # floating IPs are ours only there
            floating.release(self.client.conn, server_id=backend_id)
        if self._server(backend_id) is None:
            return self._handle("delete", backend_id, done=True)
        try:
            with translate(f"deleting server {backend_id}"):
                self.client.conn.compute.delete_server(backend_id, ignore_missing=True)
        except TransientDriverError as exc:
            if exc.code != Code.BUSY or self._server(backend_id) is not None:
                raise
        return self._handle("delete", backend_id)

    # -- poll ----------------------------------------------------------------------
    def poll(self, task: DriverTask) -> TaskStatus:
        action = task.data.get("action")
        if action == "provision":
            return TaskStatus(
                done=True, progress=100, task=DriverTask(ref=task.ref, done=True, data=task.data["tenant"])
            )
        server = self._server(task.backend_id)
        if action == "delete":
            if server is None:
                return TaskStatus(done=True, progress=100, message="deleted")
            return self._waiting(task, server, "deleting")
        if server is None:
            raise PermanentDriverError(
                f"Server {task.backend_id} vanished during {action} on {self.config.name}.", code=Code.NOT_FOUND
            )
        status = str(server.status or "").upper()
        if status == "ERROR":
            raise PermanentDriverError(f"OpenStack could not {action} the server: {servers.fault_message(server)}")
        if action == "create":
            if status == "BUILD":
                return self._waiting(task, server, "building")
            if task.data.get("floating_network_id"):
                return self._with_floating_ip(task, server)
            return self._done(server)
        if action == "reboot":
            return self._poll_reboot(task, server, status)
        if action == "resize":
            return self._poll_resize(task, server, status)
        if action == "rebuild":
            return self._poll_rebuild(task, server, status)
        if action in SNAPSHOT_ACTIONS or action in BACKUP_ACTIONS:
            return self._poll_snapshot(task, server, status)
        if status == TARGET_STATUS.get(action) and not server.task_state:
            return self._done(server)
        return self._waiting(task, server, {"start": "starting", "stop": "shutting down"}.get(action, action))

    def _poll_reboot(self, task: DriverTask, server: Any, status: str) -> TaskStatus:
        if status == "ACTIVE" and not server.task_state:
            return self._done(server)
        if task.data.get("type") == "SOFT" and time.time() >= float(task.data.get("hard_at") or 0):
            logger.info("openstack: soft reboot of %s still running; rebooting hard", task.backend_id)
            self._reboot(task.backend_id, "HARD")
            hard = DriverTask(ref=task.ref, backend_id=task.backend_id, data=dict(task.data, type="HARD"))
            return TaskStatus(done=False, task=hard, poll_after=self.settings.poll_seconds, message="hard rebooting")
        return self._waiting(task, server, "rebooting" if task.data.get("type") == "SOFT" else "hard rebooting")

    def _waiting(self, task: DriverTask, server: Any, message: str) -> TaskStatus:
        progress = server.progress if isinstance(server.progress, int) and 0 < server.progress < 100 else None
        detail = f"{message} ({server.task_state})" if server.task_state else message
        return TaskStatus(done=False, progress=progress, poll_after=self.settings.poll_seconds, message=detail)

    def _with_floating_ip(self, task: DriverTask, server: Any) -> TaskStatus:
        address = floating.ensure(
            self.client.conn,
            server_id=server.id,
            external_network_id=task.data["floating_network_id"],
            project_id=task.data.get("project_id"),
        )
        if address is None:
            return self._waiting(task, server, "waiting for the server's port")
        vm = servers.to_vm(server)
        public_first = (address, *(a for a in vm.ip_addresses if a != address))
        return TaskStatus(
            done=True, progress=100, vm=dataclasses.replace(vm, ip_addresses=public_first), message="active"
        )

    @staticmethod
    def _done(server: Any) -> TaskStatus:
        return TaskStatus(done=True, progress=100, vm=servers.to_vm(server), message=f"{server.status.lower()}")

    def console(self, backend_id: str, *, protocol: str = ConsoleProtocol.VNC) -> ConsoleTarget:
        """Nova's own noVNC console (``POST /servers/{id}/remote-consoles``): the browser is
        sent to nova's novncproxy; nothing goes through ours."""
        if protocol != ConsoleProtocol.VNC:
            raise PermanentDriverError("OpenStack servers offer their screen (vnc) here.", code="no_console")
        server = self._existing(backend_id)
        if server.status != "ACTIVE":
            message = f"Server {server.name} is {server.status}: start it to see its screen."
            raise PermanentDriverError(message, code="off")
        with translate(f"opening the console of server {backend_id}"):
            console = self.client.conn.compute.create_console(backend_id, console_type="novnc")
        return ConsoleTarget(protocol=protocol, browser_url=console["url"])

    def close(self) -> None:
        self.client.close()


def _range(low, high) -> str | None:
    if not low or not high:
        return None
    return f"{discover.version_to_string(low)}..{discover.version_to_string(high)}"
