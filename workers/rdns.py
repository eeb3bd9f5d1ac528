"""Reverse DNS delivery: PTR records written to PowerDNS Authoritative over its HTTP API.

``apply_record`` (task ``apply_reverse_dns``) takes a short lease on one ReverseDNSRecord,
writes its desired state (RRset REPLACE, or DELETE when it has no name; the zone is created
when PowerDNS lacks it) and marks that version applied. A change made meanwhile is written
before the lease is let go; a failure is retried by ``relay`` (task ``relay_reverse_dns``,
beat) with backoff. Writing is idempotent, so a task run twice does no harm.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import requests
from django.conf import settings

from compute import selectors
from compute.services import rdns as rdns_services

logger = logging.getLogger(__name__)
REWRITES = 5


class PowerDNSError(Exception):
    pass


class PowerDNS:
    """The few calls of the PowerDNS Authoritative HTTP API (v1) the control plane makes."""

    def __init__(self, *, url: str, key: str, server_id: str = "localhost", timeout: float = 5, nameservers=()):
        self.base = f"{url.rstrip('/')}/api/v1/servers/{quote(server_id, safe='')}"
        self.timeout, self.nameservers = timeout, list(nameservers)
        self.session = requests.Session()
        self.session.headers.update({"X-API-Key": key, "Accept": "application/json"})

    @classmethod
    def from_settings(cls) -> PowerDNS:
        return cls(
            url=settings.POWERDNS_API_URL,
            key=settings.POWERDNS_API_KEY,
            server_id=settings.POWERDNS_SERVER_ID,
            timeout=settings.POWERDNS_TIMEOUT_SECONDS,
            nameservers=settings.POWERDNS_NAMESERVERS,
        )

    def _call(self, method: str, path: str, body: dict | None = None) -> requests.Response:
        try:
            return self.session.request(method, self.base + path, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise PowerDNSError(f"PowerDNS unreachable: {exc.__class__.__name__}: {exc}") from None

    @staticmethod
    def _error(response: requests.Response, what: str) -> PowerDNSError:
        try:
            detail = response.json().get("error") or response.text
        except ValueError:
            detail = response.text
        return PowerDNSError(f"PowerDNS refused {what}: HTTP {response.status_code} {str(detail)[:300]}")

    def zone(self, zone: str) -> dict | None:
        response = self._call("GET", f"/zones/{quote(zone, safe='')}")
        if response.status_code in (404, 422):
            return None
        if response.status_code != 200:
            raise self._error(response, f"reading zone {zone}")
        return response.json()

    def create_zone(self, zone: str) -> None:
        body = {"name": zone, "kind": "Native", "nameservers": self.nameservers}
        response = self._call("POST", "/zones", body)
        if response.status_code not in (201, 409):  # 409: it exists (created meanwhile)
            raise self._error(response, f"creating zone {zone}")

    def patch_rrset(self, zone: str, rrset: dict) -> None:
        path = f"/zones/{quote(zone, safe='')}"
        response = self._call("PATCH", path, {"rrsets": [rrset]})
        if response.status_code in (404, 422) and self.zone(zone) is None:
            self.create_zone(zone)
            response = self._call("PATCH", path, {"rrsets": [rrset]})
        if response.status_code != 204:
            raise self._error(response, f"the {rrset['type']} record {rrset['name']}")

    def set_ptr(self, *, zone: str, owner: str, target: str, ttl: int) -> None:
        rrset = {
            "name": owner,
            "type": "PTR",
            "ttl": ttl,
            "changetype": "REPLACE",
            "records": [{"content": target, "disabled": False}],
        }
        self.patch_rrset(zone, rrset)

    def delete_ptr(self, *, zone: str, owner: str) -> None:
        self.patch_rrset(zone, {"name": owner, "type": "PTR", "changetype": "DELETE"})


def apply_record(record_id: int) -> str:
    """Write one record's desired PTR; returns what happened (for the task result and logs)."""
    if not settings.POWERDNS_API_URL:
        return "disabled"
    if not rdns_services.rdns_lease(record_id=record_id):
        return "not pending or busy"
    client = PowerDNS.from_settings()
    try:
        for _ in range(REWRITES):
            record = selectors.reverse_dns_record(record_id=record_id)
            owner = record.owner
            try:
                if record.ptr:
                    client.set_ptr(zone=record.zone, owner=owner, target=record.ptr, ttl=settings.REVERSE_DNS_TTL)
                else:
                    client.delete_ptr(zone=record.zone, owner=owner)
            except PowerDNSError as exc:
                rdns_services.rdns_mark_failed(record_id=record_id, version=record.version, error=str(exc))
                return "failed"
            if rdns_services.rdns_mark_applied(record_id=record_id, version=record.version):
                logger.info("PTR %s -> %s written", owner, record.ptr or "(removed)")
                return "applied"
        return "still changing"  # stays pending: the relay comes back to it
    finally:
        rdns_services.rdns_lease_release(record_id=record_id)


def relay() -> dict:
    if not settings.POWERDNS_API_URL:
        return {"published": 0}
    return {"published": rdns_services.rdns_relay()}
