"""The upload page of `swin2sr serve` in a real headless Chromium driven by selenium (issue 18).

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them); skipped without them, failed in CI.
"""

from __future__ import annotations

import base64
import os
import shutil

import numpy as np
import pytest
from serve_helpers import ServeProcess, decoded, png_bytes, require_serve_packages

require_serve_packages()
import requests

TIMEOUT = 60
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI") == "true":
            pytest.fail("chromium and chromium-driver are needed (apt-get install chromium chromium-driver)")
        pytest.skip("chromium and chromium-driver are not installed")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1300"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.set_script_timeout(TIMEOUT)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process = ServeProcess(tmp_path_factory.mktemp("page-data"), "--tile", "32", "--max-input-size", "0")
    yield process
    assert process.stop() == 0


def visible(driver, element_id: str) -> bool:
    return driver.find_element("id", element_id).is_displayed()


def wait_for(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, TIMEOUT, poll_frequency=0.05).until(condition, message=what)


def download(driver, href: str) -> bytes:
    """The bytes behind the page's #result link (a blob: URL), fetched inside the page."""
    script = """const done = arguments[arguments.length - 1];
        fetch(arguments[0]).then(r => r.arrayBuffer()).then(b => {
            let s = ""; new Uint8Array(b).forEach(x => s += String.fromCharCode(x)); done(btoa(s)); });"""
    return base64.b64decode(driver.execute_async_script(script, href))


def test_upload_watch_progress_download_and_match_the_api(browser, server, tmp_path):
    data = png_bytes(192, 128, seed=11)  # 24 tiles of 32: several progress steps
    picture = tmp_path / "holiday.png"
    picture.write_bytes(data)
    browser.get(server.url + "/")
    assert not visible(browser, "result") and not visible(browser, "error")
    browser.find_element("id", "file").send_keys(str(picture))
    browser.find_element("id", "upscale").click()

    seen = set()

    def finished(driver):
        seen.add(float(driver.find_element("id", "progress").get_attribute("value")))
        return visible(driver, "result") or visible(driver, "error")

    wait_for(browser, finished, "the result link or an error")
    assert not visible(browser, "error"), browser.find_element("id", "error").text
    assert any(0 < value < 1 for value in seen) and max(seen) == 1.0, seen  # the bar moved, then filled
    link = browser.find_element("id", "result")
    assert link.get_attribute("download") == "holiday_upscaled.png"
    from_page = decoded(download(browser, link.get_attribute("href")))

    from_api = requests.post(f"{server.url}/v1/upscale?wait=true", files={"image": ("h.png", data)}, timeout=TIMEOUT)
    assert from_page.size == (768, 512)
    np.testing.assert_array_equal(np.asarray(from_page), np.asarray(decoded(from_api.content)))
    browser.save_screenshot(str(tmp_path / "page.png"))
    if os.environ.get("SWIN2SR_SCREENSHOT"):  # to look at the page: SWIN2SR_SCREENSHOT=/tmp/page.png pytest ...
        shutil.copy(tmp_path / "page.png", os.environ["SWIN2SR_SCREENSHOT"])


def test_a_refused_upload_shows_one_line_in_error(browser, server, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_bytes(b"these are notes, not a picture")
    browser.get(server.url + "/")
    browser.find_element("id", "file").send_keys(str(fake))
    browser.find_element("id", "upscale").click()
    wait_for(browser, lambda d: visible(d, "error"), "the error line")
    message = browser.find_element("id", "error").text
    assert "not an image" in message and "\n" not in message
    assert not visible(browser, "result")
