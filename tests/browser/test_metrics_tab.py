"""The Metrics tab in a real browser: uPlot draws every chart from the API, values and units
show under the cursor, no script error, and it fits a phone in the dark theme."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from compute.models import VMMetricSample
from tests.browser.test_pages import browser_as
from tests.fixtures.accounts import enrol
from tests.fixtures.browser import DESKTOP, PHONE


@pytest.mark.parametrize("viewport,scheme", [(DESKTOP, "light"), (PHONE, "dark")])
def test_the_metrics_tab_draws_every_chart(new_page, client, live_server, user, sim_vm, viewport, scheme, tmp_path):
    vm = sim_vm("web")
    now = timezone.now().replace(microsecond=0)
    VMMetricSample.objects.bulk_create(
        VMMetricSample(
            vm=vm,
            at=now - timedelta(minutes=m),
            cpu_pct=40 + m % 7,
            mem_used=300 * 2**20,
            mem_total=2**30,
            disk_read_bps=1.5e6,
            disk_write_bps=2e5,
            disk_read_iops=90,
            disk_write_iops=12,
            net_rx_bps=8e6,
            net_tx_bps=2.5e6,
        )
        for m in range(1, 60)
    )
    page = browser_as(new_page, client, live_server, user, enrol(user).device, viewport, scheme)
    page.goto(f"/projects/{vm.project.slug}/vms/{vm.pk}/metrics/")

    expect(page.locator("#metrics .uplot")).to_have_count(5)
    expect(page.locator("[data-status]")).to_contain_text("Updated")
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0  # fits the screen
    plot = page.locator("figure[data-metric='network'] .u-over")
    plot.hover()
    legend = page.locator("figure[data-metric='network'] .u-legend")
    expect(legend).to_contain_text("Mbit/s")
    page.locator("figure[data-metric='cpu'] .u-over").hover()
    expect(page.locator("figure[data-metric='cpu'] .u-legend")).to_contain_text(" %")
    page.get_by_role("button", name="Last day").click()
    expect(page.get_by_role("button", name="Last day")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#metrics .uplot")).to_have_count(5)
    page.screenshot(path=str(tmp_path / f"metrics-{scheme}.png"), full_page=True)
    assert page.errors == []
