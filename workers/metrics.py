"""Metric collection near the hypervisors.

Beat sends ``collect_metrics_all`` to the control queue every
``METRICS_INTERVAL_SECONDS``; it publishes one ``collect_metrics(hypervisor_id)``
per enabled hypervisor whose driver declares ``Capability.METRICS`` to that
hypervisor's queue, with an expiry of one interval: a round a busy worker did not
reach in time is dropped, not run late (the next round comes anyway). The round
itself is one driver call (bounded by the driver's timeouts and Celery's soft time
limit) and one database transaction; it takes no operation's lock or claim, so it
never holds up operations beyond one worker slot for that time. A driver error
stores nothing: the round is a gap.
"""

from __future__ import annotations

import dataclasses
import logging

from celery import current_app
from django.conf import settings

from compute import selectors
from compute.services import metrics as metrics_services
from controlplane.celery import FIRE_AND_FORGET

from .drivers.base import Capability, DriverError, driver_class
from .engine import driver_for

logger = logging.getLogger(__name__)
COLLECT = "collect_metrics"


def collect_metrics_all() -> dict:
    """Publish one collection per hypervisor that reports metrics."""
    interval = settings.VM_METRICS["INTERVAL_SECONDS"]
    sent = []
    for hypervisor in selectors.hypervisor_list_to_reconcile():  # enabled, not in maintenance
        try:
            if not driver_class(hypervisor.kind).supports(Capability.METRICS):
                continue
        except DriverError:
            continue
        try:
            current_app.send_task(
                COLLECT, args=[hypervisor.pk], queue=hypervisor.queue, expires=interval, **FIRE_AND_FORGET
            )
            sent.append(hypervisor.name)
        except Exception:
            logger.warning("could not publish metrics collection for %s", hypervisor.name, exc_info=True)
    return {"sent": sent}


def collect_metrics(hypervisor_id: int) -> dict:
    """One round for one hypervisor: one driver call, one write."""
    hypervisor = selectors.hypervisor_list_to_reconcile().filter(pk=hypervisor_id).first()
    if hypervisor is None:
        return {"skipped": "disabled, in maintenance or gone"}
    try:
        readings = driver_for(hypervisor).metrics()
    except DriverError as exc:
        logger.warning("metrics: %s did not answer: %s", hypervisor.name, exc.message)
        return {"hypervisor": hypervisor.name, "error": exc.message}
    return {
        "hypervisor": hypervisor.name,
        **metrics_services.metrics_ingest(
            hypervisor_id=hypervisor.pk, readings=[dataclasses.asdict(r) for r in readings]
        ),
    }
