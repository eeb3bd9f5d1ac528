"""The drivers' power states (workers/drivers/base.py) are compute's (compute/choices.py):
what a driver reports is stored as is, so a value only one side knows would be a silent bug."""

from compute.choices import PowerState as StoredPowerState
from workers.drivers.base import PowerState as DriverPowerState


def test_every_driver_power_state_is_a_stored_one_with_the_same_name():
    for name in ("RUNNING", "STOPPED", "PAUSED", "UNKNOWN"):
        assert getattr(DriverPowerState, name) == getattr(StoredPowerState, name).value
    assert set(DriverPowerState.ALL) <= set(StoredPowerState.values)


def test_only_missing_is_computes_own():
    # "missing" is the reconciler's finding (not in a listing), never a driver's report.
    assert set(StoredPowerState.values) - set(DriverPowerState.ALL) == {StoredPowerState.MISSING}
