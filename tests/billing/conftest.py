import pytest


@pytest.fixture
def project(user):
    """Billing tests start from an empty wallet (exact balances are asserted);
    the shared ``project`` fixture has a funded one."""
    return user.projects.get()
