"""Tenant provisioning: what one of our projects gets on an OpenStack cloud.

In order, each step looking up what an earlier (crashed) run made before creating:

1. **project** — ``tenant_projects: create``: an OpenStack project ``<prefix><slug>``
   in ``tenant_domain`` (found by name), and our user gets ``member_role`` on it so
   servers can be built inside it. ``shared``: the login's own project. Without an
   identity service (``auth_type: none``) projects are implicit: a stable id.
2. **quotas** — our ProjectQuota pushed to nova's quota set of that project
   (instances, cores, ram); not in ``shared`` mode, whose project everyone shares.
3. **network** — ``network_id`` set: every project uses that shared network and
   nothing is created. Otherwise a private network and subnet (``subnet_cidr``), a
   router with its gateway on ``external_network`` and an interface on the subnet,
   and a security group with ``security_group_rules`` (SSH and ICMP by default).

The result (``DriverTask.data`` → ``TenantBinding.data``) is the ids ``create`` needs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from ..base import PermanentDriverError, TenantSpec, TransientDriverError
from .client import Code, OpenStackClient, translate
from .settings import OpenStackSettings

logger = logging.getLogger(__name__)

# TenantSpec.quotas key → nova quota set field.
COMPUTE_QUOTAS = {"instances": "instances", "cores": "cores", "ram_mib": "ram"}


def _first(items) -> Any | None:
    return next(iter(items), None)


def _ensure(what: str, find: Callable[[], Iterable], create: Callable[[], Any]) -> Any:
    """The first resource ``find`` lists, else the one ``create`` makes (logged)."""
    with translate(f"looking up {what}"):
        found = _first(find())
    if found is not None:
        return found
    with translate(f"creating {what}"):
        created = create()
    logger.info("openstack: created %s (%s)", what, created.id)
    return created


class TenantProvisioner:
    def __init__(self, client: OpenStackClient, settings: OpenStackSettings, spec: TenantSpec):
        self.client, self.settings, self.spec = client, settings, spec
        self.conn = client.conn

    def run(self) -> dict[str, Any]:
        # Reaching a service's proxy (conn.identity, conn.network) logs in and discovers its
        # endpoint: Keystone refusing us there must be typed too, as check() types it.
        with translate("provisioning the project"):
            return self._run()

    def _run(self) -> dict[str, Any]:
        project_id, project_name = self._project()
        data: dict[str, Any] = {"project_id": project_id, "project_name": project_name}
        data["quotas"] = self._quotas(project_id)
        if self.settings.network_id:  # a shared provider network: only the project's security group is ours
            data["network_id"] = self.settings.network_id
            if self.client.has("network"):  # auth_type none without a network endpoint: nova's own default
                data["security_group_id"] = self._security_group(project_id)
        else:
            data.update(self._network(project_id))
        return data

    # -- project ------------------------------------------------------------------------
    def _project(self) -> tuple[str, str]:
        settings, key = self.settings, self.spec.project_key
        if settings.tenant_projects == "shared":
            return self.client.own_project_id(), ""
        name = settings.tenant_name(key)
        if settings.noauth:
            return settings.noauth_project_id(key), name
        identity = self.conn.identity
        project = _ensure(
            f"project {name}",
            lambda: identity.projects(name=name, domain_id=settings.tenant_domain),
            lambda: identity.create_project(
                name=name,
                domain_id=settings.tenant_domain,
                description=f"Control plane project {self.spec.project_name} ({key})",
                is_enabled=True,
            ),
        )
        with translate(f"looking up role {settings.member_role}"):
            role = _first(identity.roles(name=settings.member_role))
        if role is None:
            raise PermanentDriverError(
                f"OpenStack has no role {settings.member_role!r} (settings.member_role).", code=Code.MISCONFIGURED
            )
        user_id = self.client.own_user_id()
        with translate(f"giving our user the {settings.member_role} role on {name}"):
            identity.assign_project_role_to_user(project.id, user_id, role.id)
        return project.id, name

    # -- quotas -----------------------------------------------------------------------------
    def _quotas(self, project_id: str) -> dict[str, int]:
        if self.settings.tenant_projects == "shared":
            return {}
        quotas = {
            nova: int(self.spec.quotas[ours]) for ours, nova in COMPUTE_QUOTAS.items() if ours in self.spec.quotas
        }
        if quotas:
            with translate("setting the project's compute quotas"):
                self.conn.compute.update_quota_set(project_id, **quotas)
        return quotas

    # -- network ----------------------------------------------------------------------------
    def _network(self, project_id: str) -> dict[str, Any]:
        self.client.require("network")
        settings, net = self.settings, self.conn.network
        name = settings.tenant_name(self.spec.project_key, "-net")
        network = _ensure(
            f"network {name}",
            lambda: net.networks(name=name, project_id=project_id),
            lambda: net.create_network(name=name, project_id=project_id),
        )
        subnet_name = settings.tenant_name(self.spec.project_key, "-subnet")
        subnet = _ensure(
            f"subnet {subnet_name}",
            lambda: net.subnets(name=subnet_name, network_id=network.id),
            lambda: net.create_subnet(
                name=subnet_name,
                network_id=network.id,
                project_id=project_id,
                ip_version=4,
                cidr=settings.subnet_cidr,
                is_dhcp_enabled=True,
                dns_nameservers=list(settings.dns_nameservers),
            ),
        )
        data = {"network_id": network.id, "subnet_id": subnet.id}
        if settings.external_network:
            data["router_id"] = self._router(project_id, network.id, subnet.id)
            data["external_network_id"] = self._external_network_id()  # servers get a floating IP from it
        data["security_group_id"] = self._security_group(project_id)
        return data

    def _external_network_id(self) -> str:
        net, wanted = self.conn.network, self.settings.external_network
        with translate(f"looking up external network {wanted}"):
            found = _first(net.networks(name=wanted, is_router_external=True)) or _first(
                net.networks(id=wanted, is_router_external=True)
            )
        if found is None:
            raise PermanentDriverError(
                f"OpenStack has no external network {wanted!r} (settings.external_network).", code=Code.MISCONFIGURED
            )
        return found.id

    def _router(self, project_id: str, network_id: str, subnet_id: str) -> str:
        net = self.conn.network
        name = self.settings.tenant_name(self.spec.project_key, "-router")
        gateway = {"network_id": self._external_network_id()}
        router = _ensure(
            f"router {name}",
            lambda: net.routers(name=name, project_id=project_id),
            lambda: net.create_router(name=name, project_id=project_id, external_gateway_info=gateway),
        )
        if not (router.external_gateway_info or {}).get("network_id"):
            with translate(f"setting the gateway of router {name}"):
                router = net.update_router(router, external_gateway_info=gateway)
        with translate(f"looking up the interfaces of router {name}"):
            attached = _first(net.ports(device_id=router.id, network_id=network_id))
        if attached is None:
            with translate(f"attaching router {name} to the subnet"):
                net.add_interface_to_router(router, subnet_id)
        return router.id

    def _security_group(self, project_id: str) -> str:
        net = self.conn.network
        name = self.settings.tenant_name(self.spec.project_key, "-default")
        group = _ensure(
            f"security group {name}",
            lambda: net.security_groups(name=name, project_id=project_id),
            lambda: net.create_security_group(
                name=name, project_id=project_id, description="Ingress allowed by the control plane"
            ),
        )
        with translate(f"reading the rules of security group {name}"):
            existing = {_rule_key(rule) for rule in net.security_group_rules(security_group_id=group.id)}
        for rule in self.settings.security_group_rules:
            wanted = _rule_body(rule)
            if _rule_key(wanted) in existing:
                continue
            try:
                with translate(f"adding a rule to security group {name}"):
                    net.create_security_group_rule(security_group_id=group.id, project_id=project_id, **wanted)
            except TransientDriverError as exc:
                if exc.code != Code.BUSY:  # neutron's 409 here: a concurrent run added the same rule
                    raise
        return group.id


def _rule_body(rule: dict[str, Any]) -> dict[str, Any]:
    protocol = str(rule.get("protocol") or "tcp").lower()
    body: dict[str, Any] = {
        "direction": "ingress",
        "ether_type": str(rule.get("ethertype") or "IPv4"),
        "protocol": protocol,
        "remote_ip_prefix": str(rule.get("remote_ip_prefix") or "0.0.0.0/0"),
    }
    if protocol in ("tcp", "udp"):
        port_min = int(rule.get("port") or rule.get("port_range_min") or 0) or None
        body["port_range_min"] = port_min
        body["port_range_max"] = int(rule.get("port_range_max") or port_min or 0) or None
    return body


def _rule_key(rule: Any) -> tuple:
    get = rule.get if isinstance(rule, dict) else lambda name: getattr(rule, name, None)
    return (
        get("direction"),
        get("ether_type"),
        (get("protocol") or "").lower() or None,
        get("port_range_min"),
        get("port_range_max"),
        get("remote_ip_prefix"),
    )
