"""A headless Chromium for the demo's tests, latency benchmark and screenshots (Selenium).

Uses the system's browser and driver (Debian: `apt-get install chromium
chromium-driver`), never a downloaded one: Selenium is given both paths, so its
driver manager stays offline.

Example:
    >>> driver = headless_chromium()
    >>> driver.get("http://127.0.0.1:8000/?seed=42"); driver.save_screenshot("page.png")
    >>> driver.quit()
"""

from __future__ import annotations

import importlib.util
import os
import shutil

_BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> tuple[str | None, str | None, str]:
    """(browser path, driver path, reason) where reason is "" when everything is there."""
    if importlib.util.find_spec("selenium") is None:
        return None, None, "selenium is not installed (pip install -e \".[dev]\")"
    names = [os.environ["CHROMIUM"]] if os.environ.get("CHROMIUM") else _BROWSERS
    browser = next((path for name in names if (path := shutil.which(name))), None)
    driver = shutil.which(os.environ.get("CHROMEDRIVER") or "chromedriver")
    if not browser or not driver:
        return browser, driver, ("no headless Chromium: apt-get install chromium "
                                 "chromium-driver (or set CHROMIUM and CHROMEDRIVER)")
    return browser, driver, ""


def headless_chromium(width: int = 1000, height: int = 900):
    """A Selenium Chrome driver on headless Chromium; the caller quits it.

    Raises:
        RuntimeError: the browser, its driver or Selenium is missing (says what to install).
    """
    browser, driver, reason = find_chromium()
    if reason:
        raise RuntimeError(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    # --no-sandbox: CI and containers run as root, where Chromium's sandbox cannot start.
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


#: JavaScript for `execute_async_script`: waits until every <img> is decoded, then returns
#: {ready: ms from navigation start until then, request: ms from navigation start to the
#: request, response: ms from the request to the page's last byte (the server's share),
#: images: [{id, src, width, height}]}; ready is -1 (and images the reason) on failure.
#: The demo page records `ready` itself (window.kganImagesReady) as its images decode,
#: so WebDriver's own round trip is not counted; other pages get the time of this call.
IMAGES_READY = """
const done = arguments[arguments.length - 1];
const images = [...document.images];
const nav = performance.getEntriesByType('navigation')[0] || {};
Promise.all(images.map(i => i.decode()))
  .then(() => window.kganImagesReady || performance.now())
  .then(ready => done({ready: ready, request: nav.requestStart,
    response: nav.responseEnd - nav.requestStart,
    images: images.map(i => ({id: i.id, src: i.src, width: i.naturalWidth,
                              height: i.naturalHeight}))}),
    e => done({ready: -1, images: String(e)}));
"""
