"""The UI in a real browser: headless Debian Chromium, driven by Selenium, materialises a
partition of every asset from the asset graph and sees it succeed and its picture render."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quant_assets.lakehouse.store import PartitionStore
from quant_assets_tests.orchestration.conftest import wait

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
DAY = "2024-06-04"
ASSETS = ["raw_screen", "liquid_universe", "signals", "regime", "covariance", "barbell_weights",
          "metadata_catalog", "portfolio_returns"]
#: The title of the launch dialog of "Materialize all…".
LAUNCH = f"Launch runs to materialize {len(ASSETS)} assets"

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason=f"{CHROMIUM} or {CHROMEDRIVER} not installed (Debian packages chromium, chromium-driver; "
           "`make test` installs them where it runs as root with apt-get)",
)


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    # Headless as root on a machine with no outside network: no sandbox, no background calls.
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1600,1200", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    # An explicit driver path: selenium-manager never tries to download one.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def _until(driver, what: str, find, timeout_s: float):
    """Poll ``find(driver)`` until it returns something truthy; fail naming ``what``."""
    from selenium.common.exceptions import WebDriverException

    return wait(f"{what} (page {driver.current_url})", lambda: find(driver), timeout_s,
                transient=(WebDriverException,), poll_s=0.5)


def _visible(driver, xpath: str):
    from selenium.webdriver.common.by import By

    return [e for e in driver.find_elements(By.XPATH, xpath) if e.is_displayed()]


def _button(text: str) -> str:
    return f"//button[normalize-space()='{text}']"


def _click(driver, xpath: str, what: str, timeout_s: float = 60) -> None:
    """Click the element a user would; a fresh instance greets its first visitor with a dialog
    that can pop up over the page at any moment: skip it, as a user would, and click again.
    When that dialog opened under another one (the launch dialog), its Skip button is covered:
    it waits until the dialog on top closes."""
    from selenium.common.exceptions import ElementClickInterceptedException

    def clicked(d) -> bool:
        for skip in _visible(d, _button("Skip")):
            try:
                skip.click()
            except ElementClickInterceptedException:
                pass
        targets = _visible(d, xpath)
        if not targets:
            return False
        try:
            targets[0].click()
        except ElementClickInterceptedException:
            return False
        return True

    _until(driver, what, clicked, timeout_s)


def test_materialise_a_partition_from_the_asset_graph(dagster_dev, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    dev, driver = dagster_dev, browser
    driver.get(f"{dev.url}/asset-groups")
    _until(driver, "the asset groups in the graph", lambda d: _visible(d, "//*[normalize-space()='risk']"), 120)
    driver.save_screenshot(str(tmp_path / "1-asset-graph.png"))
    _click(driver, _button("Materialize all…"), "the asset graph's 'Materialize all…' button")
    _until(driver, "the partition dialog", lambda d: _visible(d, f"//*[contains(., '{LAUNCH}')]"), 60)
    _click(driver, "//*[normalize-space()='Show all partitions']", "the 'Show all partitions' link", 30)
    # Inside the launch dialog: the welcome dialog (open under it, or not) has a text box too.
    partitions = _until(driver, "the partition selection box", lambda d: _visible(
        d, f"//div[@role='dialog'][.//*[text()='{LAUNCH}']]//input[@type='text']"), 30)[0]
    partitions.click()
    partitions.send_keys(Keys.CONTROL, "a")
    partitions.send_keys(Keys.DELETE)
    partitions.send_keys(DAY, Keys.TAB)
    _until(driver, "the 'Launch 1 run' button", lambda d: _visible(d, _button("Launch 1 run")), 30)
    driver.save_screenshot(str(tmp_path / "2-partition-dialog.png"))
    _click(driver, _button("Launch 1 run"), "the 'Launch 1 run' button", 30)
    # The dialog closes once the webserver has accepted the run.
    _until(driver, "the partition dialog to close after launching",
           lambda d: not _visible(d, f"//*[contains(., '{LAUNCH}')]"), 60)

    def succeeded(d) -> bool:
        d.get(f"{dev.url}/runs")
        _until(d, "the runs table", lambda d: _visible(d, "//*[normalize-space()='Status']"), 30)
        body = d.find_element(By.TAG_NAME, "body").text
        assert "Failure" not in body, dev.log_tail()
        return f"partition: {DAY}" in body and "Success" in body

    _until(driver, f"the run of {DAY} to show Success", succeeded, 400)
    driver.save_screenshot(str(tmp_path / "3-run-succeeded.png"))
    store = PartitionStore(dev.lake)
    for asset in ASSETS:
        assert [d.isoformat() for d in store.partitions(asset)] == [DAY], asset

    # The weights picture renders inside the materialisation's metadata.
    driver.get(f"{dev.url}/assets/barbell_weights?view=events&partition={DAY}")
    link = "*[normalize-space()='[Show Markdown]']"
    _click(driver, f"//tr[td[1][normalize-space()='weights_by_sleeve']]//{link}[not(.//{link})]",
           "the weights_by_sleeve metadata")
    driver.save_screenshot(str(tmp_path / "4-weights-picture.png"))
    picture = _until(driver, "the weights picture", lambda d: [
        i for i in d.find_elements(By.TAG_NAME, "img")
        if (i.get_attribute("src") or "").startswith("data:image/png;base64,") and i.size["height"] > 100], 30)
    assert picture[0].size["width"] > 100
    driver.save_screenshot(str(tmp_path / "4-weights-picture.png"))
    assert all(os.path.getsize(tmp_path / f) > 10_000 for f in
               ("1-asset-graph.png", "2-partition-dialog.png", "3-run-succeeded.png", "4-weights-picture.png"))
