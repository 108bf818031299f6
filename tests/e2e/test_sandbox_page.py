"""The sandbox page in a real browser: headless Chromium plays the whole loop in the three panes.

The Debian packages `chromium` and `chromium-driver` are what it drives (the Makefile installs
them when missing); Selenium talks to /usr/bin/chromedriver, so no browser is downloaded.
Screenshots of each step go to tests/e2e/screenshots/ (not committed) for a person to look at.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import texts
from bot.sandbox import Sandbox
from tests.e2e.test_sandbox import playable

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SHOTS = Path(__file__).with_name("screenshots")
STEP = 45  # seconds any one step may take on a busy machine
COMMENT = "Forty minutes for a coffee, and nobody said sorry."
REPLY = "Anna, I am so sorry. Your next coffee is on us."


@contextmanager
def chromium(width: int = 1400, height: int = 900) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="hearback-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # A closed network makes Chromium stall on its own background traffic: switch all of it off.
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Page:
    """The sandbox page as a person sees it: panes, their text, their buttons."""

    def __init__(self, driver: Any) -> None:
        from selenium.common.exceptions import (
            ElementClickInterceptedException,
            NoSuchElementException,
            StaleElementReferenceException,
        )

        self.driver = driver
        # Panes are re-rendered as events arrive: an element found a moment ago may be gone.
        self.transient = (
            StaleElementReferenceException,
            NoSuchElementException,
            ElementClickInterceptedException,
        )
        SHOTS.mkdir(exist_ok=True)

    def until(self, condition: Callable[[], Any], what: str, timeout: float = STEP) -> Any:
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        def attempt(_: Any) -> Any:
            try:
                return condition()
            except self.transient:
                return False

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(attempt)
        except TimeoutException:
            self.shot("failed")
            panes = {name: self.text(name)[-600:] for name in ("customer", "staff", "admin")}
            raise AssertionError(
                f"{what} did not happen within {timeout}s; panes: {panes}"
            ) from None

    def pane(self, name: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, name)

    def text(self, pane: str) -> str:
        try:
            return str(self.pane(pane).text)
        except self.transient:
            return ""

    def shows(self, pane: str, words: str, timeout: float = STEP) -> None:
        self.until(lambda: words in self.text(pane), f"{pane} showing {words!r}", timeout)

    def button(self, pane: str, label: str) -> Any:
        from selenium.webdriver.common.by import By

        found = self.pane(pane).find_elements(
            By.XPATH, f".//div[@class='messages']//button[normalize-space()={_xpath(label)}]"
        )
        return found[-1] if found and found[-1].is_enabled() else None

    def tap(self, pane: str, label: str, timeout: float = STEP) -> None:
        def press() -> bool:
            button = self.button(pane, label)
            if button is None:
                return False
            button.click()
            return True

        self.until(press, f"a button {label!r} to tap in the {pane} pane", timeout)

    def type(self, pane: str, words: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        field = self.pane(pane).find_element(By.CSS_SELECTOR, "form.composer input")
        field.send_keys(words, Keys.ENTER)
        self.until(lambda: field.get_attribute("value") == "", f"{pane} sending {words!r}")

    def click(self, css: str) -> None:
        from selenium.webdriver.common.by import By

        self.until(lambda: self.driver.find_element(By.CSS_SELECTOR, css).click() or True, css)

    def shot(self, name: str) -> None:
        self.driver.save_screenshot(str(SHOTS / f"sandbox-{name}.png"))


def _xpath(text: str) -> str:
    return f'"{text}"' if '"' not in text else f"'{text}'"


def play_the_loop(url: str, admin_id: int) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    with chromium() as driver:
        page = Page(driver)
        driver.get(url)
        page.shows("customer", "Hello, Anna!")
        page.shows("staff", "This chat now receives cases.")
        page.shows("admin", "Hello, Sam!")
        page.shot("1-start")

        # The customer: a visit now, the survey, a low score, a reason, a comment, contact.
        page.click("#record-visit")
        page.until(
            lambda: "on its way" in driver.find_element(By.ID, "visit-status").text,
            "the visit recorded",
        )
        page.shows("customer", "How was your visit to Downtown")  # today, or yesterday
        page.tap("customer", "2")
        page.shows("customer", "Your score: 2 out of 5")
        page.tap("customer", "Waited too long")
        page.until(lambda: page.button("customer", "✓ Waited too long"), "the chip ticked")
        page.tap("customer", "Done")
        page.shows("customer", "Would you like to tell us more in your own words?")
        page.type("customer", COMMENT)
        page.tap("customer", "Yes, please")
        page.shows("customer", "A manager will contact you right here")
        page.shot("2-customer-answered")

        # The staff forum: the case's own topic opens on screen with its card.
        page.until(
            lambda: re.fullmatch(
                r"#\d+ · Anna · 2/5 · Downtown.*",
                driver.find_element(By.CSS_SELECTOR, "#topics button.active").text,
            ),
            "the case's topic shown",
        )
        page.shows("staff", " · critical · asked to be contacted")
        staff = page.text("staff")
        assert "Reasons: Waited too long" in staff and COMMENT in staff
        assert "This chat now receives cases." not in staff  # General is another thread
        page.tap("staff", "Take")
        page.shows("staff", "taken by Maria")
        page.type("staff", REPLY)
        page.shows("customer", REPLY)
        assert "Case #" not in page.text("customer")  # the back room stays in the back room
        page.type("customer", "Thank you, that is kind.")
        page.shows("staff", "Anna: Thank you, that is kind.")
        # A photo from the customer reaches the case's thread as a photo.
        page.click('button.attach[data-kind="photo"]')
        page.until(
            lambda: driver.execute_script(
                "const i = document.querySelector('#staff .messages img');"
                "return i && i.complete && i.naturalWidth > 0;"
            ),
            "the customer's photo in the staff thread",
        )
        page.shot("3-staff-replied")
        page.tap("staff", "Resolve")
        page.tap("staff", "Voucher")
        page.shows("staff", "is resolved by Maria · offered: voucher")

        # FOLLOWUP_DELAY later the customer is asked; yes closes the case.
        page.tap("customer", "Yes, thank you")
        page.shows("customer", "We are glad it is put right")
        page.shows("staff", "The customer says it was put right: case closed.")
        page.shot("4-followed-up")

        # The admin: /stats with its chart, /export with its CSV.
        page.click('#admin-quick button[data-command="/stats"]')
        page.shows("admin", "Surveys sent: 1 · answered 1 (100%)")
        page.until(
            lambda: driver.execute_script(
                "const i = document.querySelector('#admin img');"
                "return i && i.complete && i.naturalWidth > 100;"
            ),
            "the /stats chart loaded",
        )
        page.click('#admin-quick button[data-command="/export"]')
        link = page.until(
            lambda: driver.find_element(By.CSS_SELECTOR, "#admin a.doc"), "the CSV document"
        )
        assert link.get_attribute("download").endswith(".csv")
        page.shot("5-admin")

        # Another customer, who reads Chinese.
        Select(driver.find_element(By.ID, "customer-select")).select_by_visible_text(
            "王芳 (zh-hans)"
        )
        page.shows(
            "customer", texts.render(texts.GREETING, "zh_Hans", name="王芳", business="Rice Shop")
        )
        assert REPLY not in page.text("customer")
        page.click("#record-visit")
        page.until(lambda: page.button("customer", "5"), "the Chinese survey")
        survey = page.text("customer")
        assert "Downtown" in survey and "How was your visit" not in survey
        page.shot("6-chinese-customer")

        # A phone: one chat at a time, switched with the tabs.
        driver.set_window_size(390, 844)
        page.until(lambda: not page.pane("staff").is_displayed(), "one pane on a phone")
        assert page.pane("customer").is_displayed() and not page.pane("admin").is_displayed()
        page.shot("7-phone-customer")
        # The admin's chat had news since the page opened: its tab says so until looked at.
        admin_tab = driver.find_element(By.CSS_SELECTOR, '.tabs button[data-show="admin"]')
        assert "unread" in admin_tab.get_attribute("class")
        admin_tab.click()
        page.until(lambda: page.pane("admin").is_displayed(), "the admin tab")
        assert "unread" not in admin_tab.get_attribute("class")
        page.click('.tabs button[data-show="staff"]')
        page.until(lambda: page.pane("staff").is_displayed(), "the staff tab")
        assert not page.pane("customer").is_displayed() and not page.pane("admin").is_displayed()
        # News in a chat on another tab puts a dot on that tab.
        driver.execute_script(
            "fetch('/_emulator/users/' + arguments[0] + '/send', {method: 'POST',"
            " body: JSON.stringify({text: '/help'})})",
            admin_id,
        )
        page.until(lambda: "unread" in admin_tab.get_attribute("class"), "a dot on the admin tab")
        page.shot("8-phone-staff")


async def test_the_two_minute_loop_in_a_real_browser(database_url: str, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("the page is the same on every database: the SQLite pass drives the browser")
    settings = playable(database_url, followup_delay=timedelta(seconds=5))
    loop = asyncio.get_running_loop()
    async with Sandbox(settings) as sandbox:
        started = loop.time()
        assert sandbox.cast is not None
        await asyncio.to_thread(play_the_loop, sandbox.page_url, sandbox.cast.admin.id)
        # The whole loop, as a newcomer plays it, fits in two minutes even on a busy machine.
        assert loop.time() - started < 120
