"""The web console in a real headless Chromium (tests/browserkit.py) against
a real engine (tests/engine_proc.py) with real SIP calls from the project's
simulated phones.  Screenshots of each page go to the test's tmp dir
(``.../browser/shots/``; the paths are printed)."""
from __future__ import annotations

import urllib.request

import pytest

from browserkit import Browser, browser_problem
from engine_proc import Engine
from test_queue_behaviour import config

pytestmark = [pytest.mark.sip,
              pytest.mark.skipif(browser_problem() is not None, reason=str(browser_problem()))]

POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
          "connect-src 'self'; frame-ancestors 'none'")


def headers(engine, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{engine.http_port}{path}", timeout=5) as r:
        return dict(r.headers)


def policy_problems(browser) -> list[str]:
    """What the browser's console says about blocked scripts or styles, and
    script errors (failed API answers such as a 401 are expected)."""
    return [e["message"] for e in browser.console()
            if "Content Security Policy" in e["message"]
            or ("Uncaught" in e["message"] and e["level"] == "SEVERE")]


def test_login_page_under_a_strict_policy(ports, workdir, prompts_dir, tmp_path):
    cfg = config(ports, workdir, prompts_dir, {}, {"support": {}})
    with Engine(workdir, cfg) as engine, Browser(ports(), tmp_path / "browser") as browser:
        assert headers(engine, "/")["Content-Security-Policy"] == POLICY
        browser.open(f"http://127.0.0.1:{engine.http_port}/")
        browser.wait_css("#login-form")
        assert browser.js("return location.hash") == "#/login"
        # Nothing inline that the policy would have to block, and nothing blocked.
        inline = browser.js("return document.querySelectorAll("
                            "'script:not([src]), style, [style]').length")
        assert inline == 0
        assert browser.js("return [...document.scripts].map(s => s.src)") == [
            f"http://127.0.0.1:{engine.http_port}/console/app.js"]
        assert policy_problems(browser) == []
        browser.shot("login")
