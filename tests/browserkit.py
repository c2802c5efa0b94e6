"""The real headless Chromium (the OS package) for the admin page's browser tests, driven by Selenium: where it is,
the skip mark when it is absent, one way to start it, and waiting for a redirect."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

needs_browser = pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                                   reason="no chromium + chromedriver (Debian: apt-get install chromium "
                                          "chromium-driver; scripts/setup.sh installs them as root)")


def start_browser(profile: Path):
    """A headless Chromium with its own profile folder; the test skips with the reason where it cannot start."""
    pytest.importorskip("selenium", reason="selenium is not installed (the dev extra)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1200,900",
                f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    except Exception as exc:  # a browser that cannot start here (no display libraries, sandbox): say why
        pytest.skip(f"headless chromium could not start: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    driver.set_page_load_timeout(60)
    driver.implicitly_wait(10)  # a find after a click waits for the next page
    return driver


def wait_url(driver, suffix: str, timeout: float = 15.0) -> str:
    """The browser's URL once it ends with ``suffix`` (a click returns before the next page has loaded)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, timeout).until(lambda d: d.current_url.endswith(suffix))
    except TimeoutException:
        pass  # the caller's assert says where the browser is instead
    return driver.current_url
