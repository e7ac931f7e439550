"""Headless Chromium (Debian's ``chromium`` and ``chromedriver``) driven by Selenium, and
the small waits the browser tests share.

A missing browser skips a browser test on a laptop and fails it when ``CI=true``:
``make test-setup`` installs both packages. Screenshots go to one temporary folder per
test session, and each path is printed (``pytest -s`` shows it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--window-size=1600,1000")  # fmt: skip
SCREENSHOTS = Path(tempfile.gettempdir()) / "pipeline-browser-tests"


def browser_paths() -> tuple[str, str]:
    """(chromium, chromedriver); skips the test, or fails it under CI, when one is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    message = "Debian's chromium and chromium-driver are needed (make test-setup installs them)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)


@contextmanager
def chromium(profile_dir: Path) -> Iterator:
    """A headless Chromium session; always quit, also when the test fails."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def wait_until(condition, timeout: float, what: str, seen=None, interval: float = 0.25):
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` and, if
    given, what ``seen()`` says was there instead."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            instead = f"; found {seen()!r}" if seen else ""
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}{instead}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, server: subprocess.Popen, timeout: float, log: Path | None = None) -> None:
    """Wait until ``url`` answers 200; fail at once, with the server's log, if it exits."""

    def answers() -> bool:
        if server.poll() is not None:
            output = log.read_text()[-4000:] if log and log.exists() else ""
            pytest.fail(f"the server for {url} exited with {server.returncode}:\n{output}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                return response.status == 200
        except OSError:
            return False

    wait_until(answers, timeout, f"{url} to answer")
