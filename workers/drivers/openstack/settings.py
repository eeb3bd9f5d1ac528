"""An OpenStack hypervisor's settings (``Hypervisor.connection``), parsed once and checked.

The connection part is a ``clouds.yaml`` cloud entry without its secrets: ``auth``
(auth_url, project and domain names or ids), ``auth_type``, ``region_name``,
``interface``, ``cacert``, ``verify``, ``api_timeout`` and ``<service>_endpoint_override``.
The secrets (``password``, ``application_credential_secret``...) are the hypervisor's
encrypted credentials and are merged into ``auth``. The other keys are ours: how tenants
are provisioned and how servers are built. docs/OPENSTACK.md lists them all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from ..base import PermanentDriverError

AUTH_TYPES = ("password", "v3applicationcredential", "none")
# Keys of a clouds.yaml ``auth`` section we pass on (secrets come from the credentials).
AUTH_KEYS = (
    "auth_url",
    "username",
    "user_id",
    "user_domain_name",
    "user_domain_id",
    "project_name",
    "project_id",
    "project_domain_name",
    "project_domain_id",
    "domain_name",
    "domain_id",
    "application_credential_name",
)
SECRET_KEYS = ("password", "application_credential_id", "application_credential_secret", "username", "user_id")
# Top-level clouds.yaml keys passed to openstacksdk as they are.
CLOUD_KEYS = ("region_name", "interface", "cacert", "verify", "api_timeout", "identity_api_version")
DEFAULT_RULES = ({"protocol": "tcp", "port": 22}, {"protocol": "icmp"})
NOAUTH_NAMESPACE = uuid.UUID("0b7cbd1f-4c8e-4a55-9f59-3c2f3c1b5e11")


def _misconfigured(name: str, message: str) -> PermanentDriverError:
    return PermanentDriverError(f"{name}: {message}", code="misconfigured")


@dataclass(frozen=True)
class OpenStackSettings:
    auth_type: str  # password, v3applicationcredential, or none (nova noauth2: no identity service)
    auth: dict[str, Any]  # the clouds.yaml auth section merged with the credentials
    cloud: dict[str, Any]  # region_name, interface, cacert, verify, api_timeout, *_endpoint_override
    noauth_user: str = "admin"  # auth_type none: the user and project of nova's "user:project" token
    noauth_project: str = "admin"
    # -- tenants ---------------------------------------------------------------
    tenant_projects: str = "create"  # create: an OpenStack project per project; shared: all in the login's
    tenant_domain: str = "default"  # domain id new projects go to
    tenant_prefix: str = "cp-"  # names of what provisioning creates: <prefix><project slug>[-net...]
    member_role: str = "member"  # role our user gets on each new project (to build servers in it)
    network_id: str | None = None  # a shared network for every project: no per-project network/router
    external_network: str | None = None  # name or id; per-project routers get their gateway on it
    subnet_cidr: str = "10.10.0.0/24"  # each project's private subnet (private networks may overlap)
    dns_nameservers: tuple[str, ...] = ()
    security_group_rules: tuple[dict[str, Any], ...] = DEFAULT_RULES  # ingress rules of each project's group
    # -- servers ---------------------------------------------------------------
    flavors: dict[str, str] = field(default_factory=dict)  # plan name -> flavor name or id
    availability_zone: str | None = None
    managed_tag: str = "controlplane"  # on every server we build; reconciliation lists only those
    all_projects: bool = True  # list/find servers across projects (admin); false: the login's project only
    reboot_timeout_seconds: int = 120  # a soft reboot still running after this becomes a hard reboot
    poll_seconds: float = 2.0  # hint to the engine between polls

    @classmethod
    def from_config(cls, name: str, values: dict[str, Any], credentials: dict[str, Any]) -> OpenStackSettings:
        values = dict(values or {})
        auth = {k: v for k, v in dict(values.get("auth") or {}).items() if k in AUTH_KEYS and v not in (None, "")}
        auth.update({k: v for k, v in (credentials or {}).items() if k in SECRET_KEYS and v not in (None, "")})
        auth_type = str(values.get("auth_type") or cls._infer_auth_type(auth))
        if auth_type not in AUTH_TYPES:
            raise _misconfigured(name, f"auth_type must be one of {', '.join(AUTH_TYPES)}, not {auth_type!r}.")
        cloud = {k: values[k] for k in CLOUD_KEYS if values.get(k) not in (None, "")}
        cloud.update({k: v for k, v in values.items() if k.endswith("_endpoint_override") and v})
        if "verify" in cloud:
            cloud["verify"] = as_bool(cloud["verify"])
        if auth_type == "none":
            if not any(k.endswith("_endpoint_override") for k in cloud):
                raise _misconfigured(name, "auth_type none needs compute_endpoint_override (no catalog).")
        elif not auth.get("auth_url"):
            raise _misconfigured(name, "auth.auth_url is required.")
        elif auth_type == "password" and not (auth.get("password") and (auth.get("username") or auth.get("user_id"))):
            raise _misconfigured(name, "credentials need username and password (or application credentials).")
        try:
            settings = cls(
                auth_type=auth_type,
                auth=auth,
                cloud=cloud,
                noauth_user=str(values.get("noauth_user") or "admin"),
                noauth_project=str(values.get("noauth_project") or "admin"),
                tenant_projects=str(values.get("tenant_projects") or "create"),
                tenant_domain=str(values.get("tenant_domain") or "default"),
                tenant_prefix=str(values.get("tenant_prefix", "cp-")),
                member_role=str(values.get("member_role") or "member"),
                network_id=values.get("network_id") or None,
                external_network=values.get("external_network") or None,
                subnet_cidr=str(values.get("subnet_cidr") or "10.10.0.0/24"),
                dns_nameservers=tuple(values.get("dns_nameservers") or ()),
                security_group_rules=tuple(values.get("security_group_rules") or DEFAULT_RULES),
                flavors=dict(values.get("flavors") or {}),
                availability_zone=values.get("availability_zone") or None,
                managed_tag=str(values.get("managed_tag") or "controlplane"),
                all_projects=as_bool(values.get("all_projects", True)),
                reboot_timeout_seconds=int(values.get("reboot_timeout_seconds", 120)),
                poll_seconds=float(values.get("poll_seconds", 2)),
            )
        except (TypeError, ValueError) as exc:
            raise _misconfigured(name, f"invalid setting ({exc}).") from exc
        if settings.tenant_projects not in ("create", "shared"):
            raise _misconfigured(name, "tenant_projects must be create or shared.")
        if settings.tenant_projects == "create" and auth_type == "v3applicationcredential":
            raise _misconfigured(
                name,
                "application credentials are bound to one project and cannot build servers in the projects "
                "provisioning creates: use tenant_projects shared, or a user and password.",
            )
        return settings

    @staticmethod
    def _infer_auth_type(auth: dict[str, Any]) -> str:
        if auth.get("application_credential_secret"):
            return "v3applicationcredential"
        return "password"

    @property
    def noauth(self) -> bool:
        return self.auth_type == "none"

    def noauth_project_id(self, project_key: str) -> str:
        """Without an identity service projects are implicit: a stable id per project key."""
        return uuid.uuid5(NOAUTH_NAMESPACE, f"{self.tenant_prefix}{project_key}").hex

    def tenant_name(self, project_key: str, suffix: str = "") -> str:
        return f"{self.tenant_prefix}{project_key}{suffix}"


def as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off")
    return bool(value)
