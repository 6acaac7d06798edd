"""A real headless browser for the console's tests: Debian's ``chromium``
driven through Debian's ``chromedriver`` (packages chromium, chromium-driver)
by selenium.

Nothing is downloaded at run time: the driver and the browser are given by
path (selenium's own driver manager is never asked, and SE_OFFLINE tells it
so should anything call it), and the browser's background fetches (updates,
safe browsing, sync ...) are switched off.  Each browser gets its own
chromedriver port (tests/portlocks.py) and its own profile directory under
the test's tmp dir; at the end it is quit, and whatever is still alive of
chromedriver and the browsers it started is stopped by PID, with timeouts.

    with Browser(ports(), tmp_path / "browser") as b:
        b.open(f"http://127.0.0.1:{port}/")
        b.shot("login")           # tmp_path/browser/shots/login.png

With SIPACD_CONSOLE_SHOTS=<dir> set, each screenshot is also copied there
(pytest removes old tmp dirs; this keeps a run's pictures, e.g. for docs/).
"""
from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

from procs import stop_process

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Set before selenium is imported: its driver manager must never download.
os.environ["SE_OFFLINE"] = "true"

from selenium import webdriver                                      # noqa: E402
from selenium.common.exceptions import (StaleElementReferenceException,  # noqa: E402
                                        TimeoutException)
from selenium.webdriver.chrome.service import Service               # noqa: E402
from selenium.webdriver.common.by import By                         # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait     # noqa: E402

__all__ = ["Browser", "Select", "browser_problem"]

# Quiet, offline, deterministic: no first-run UI, no fetches of its own.
# --no-sandbox: test machines run as root, where Chromium's sandbox refuses
# to start; the browser only ever loads the engine's own pages on 127.0.0.1.
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
    "--window-size=1280,900", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
    "--disable-client-side-phishing-detection", "--disable-breakpad", "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
    "--password-store=basic", "--use-mock-keychain", "--lang=en-US",
]


def browser_problem() -> str | None:
    """Why no browser test can run here (None when one can)."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return (f"{path} is missing: install the Debian package {package} "
                    "(scripts/install-system-packages)")
    return None


def _children(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (read from /proc), deepest last."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:   # a zombie is dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _stop_pids(pids: list[int], wait: float = 3.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        live = [p for p in pids if _alive(p)]
        for pid in live:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while any(_alive(p) for p in live) and time.monotonic() < deadline:
            time.sleep(0.05)


class Browser:
    def __init__(self, driver_port: int, workdir: Path, *, quit_timeout: float = 10.0):
        problem = browser_problem()
        if problem:
            raise RuntimeError(problem)
        self.workdir = Path(workdir)
        self.profile = self.workdir / "profile"
        self.shots = self.workdir / "shots"
        self.profile.mkdir(parents=True, exist_ok=True)
        self.shots.mkdir(parents=True, exist_ok=True)
        self.quit_timeout = quit_timeout
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for arg in CHROMIUM_ARGS:
            options.add_argument(arg)
        options.add_argument(f"--user-data-dir={self.profile}")
        # The browser's console (CSP violations, script errors) for the tests.
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.service = Service(executable_path=str(CHROMEDRIVER), port=driver_port,
                               log_output=str(self.workdir / "chromedriver.log"))
        self.driver = webdriver.Chrome(service=self.service, options=options)
        self.driver_pid = self.service.process.pid
        self.driver.set_page_load_timeout(15)
        self.driver.set_script_timeout(10)

    # -- using it ---------------------------------------------------------------------
    def open(self, url: str) -> None:
        self.driver.get(url)

    def find(self, css: str):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait(self, predicate, timeout: float = 5.0, what: str = "the page"):
        """predicate(browser) until truthy; its value.  On time-out the
        error names ``what`` and a screenshot of the moment is kept."""
        try:
            # The pages re-render on every event: an element found a moment
            # ago may be gone (stale); the next poll finds its successor.
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(
                lambda _: predicate(self))
        except TimeoutException:
            path = self.shot(f"timeout-{int(time.time() * 1000)}")
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} "
                                 f"(screenshot {path})") from None

    def wait_css(self, css: str, timeout: float = 5.0):
        """The first element matching ``css`` once it is there and shown."""
        def shown(b):
            found = [e for e in b.find_all(css) if e.is_displayed()]
            return found[0] if found else None
        return self.wait(shown, timeout, f"{css!r}")

    def wait_text(self, css: str, text: str, timeout: float = 5.0):
        """The element matching ``css`` whose text contains ``text``."""
        def has(b):
            for e in b.find_all(css):
                try:
                    if text in e.text:
                        return e
                except Exception:          # replaced while we read it
                    pass
            return None
        return self.wait(has, timeout, f"{text!r} in {css!r}")

    def text(self, css: str) -> str:
        """The text of the first element matching ``css`` ("" if none), read
        again if the page replaced the element while it was read."""
        for _ in range(5):
            found = self.find_all(css)
            try:
                return found[0].text if found else ""
            except StaleElementReferenceException:
                continue
        return ""

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        print(f"screenshot: {path}")
        keep = os.environ.get("SIPACD_CONSOLE_SHOTS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(keep) / path.name)
        return path

    def console(self) -> list[dict]:
        """The browser console's entries since the last call."""
        return self.driver.get_log("browser")

    # -- ending it --------------------------------------------------------------------
    def close(self) -> None:
        """Quit the browser (bounded by ``quit_timeout``), then stop by PID
        whatever of chromedriver and its browsers is still running."""
        pids = _children(self.driver_pid)
        quitter = threading.Thread(target=self._quit, daemon=True)
        quitter.start()
        quitter.join(self.quit_timeout)
        if self.service.process is not None:
            stop_process(self.service.process)
        _stop_pids(pids)

    def _quit(self) -> None:
        try:
            self.driver.quit()
        except Exception:        # already gone: the PIDs are stopped anyway
            pass

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
