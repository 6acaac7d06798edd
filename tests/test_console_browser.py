"""The web console in a real headless Chromium (tests/browserkit.py) against
a real engine (tests/engine_proc.py), with real SIP calls from the
project's simulated phones:

* the login page under the strict Content-Security-Policy (nothing inline,
  nothing blocked); a wrong password is refused; a POST without the CSRF
  token is refused (403) while the page's own requests carry it; logout
  ends the session; a session gone under an open page leads back to login;
* a supervisor's view: an agent's pause shows on the agents page, a caller
  queued over SIP on the wallboard, each within a second and without a
  reload (the page follows the event stream); an agent added in the admin
  page is rung with that waiting caller at once (no restart); the calls
  page shows the connected call; the reports page its interval;
* the agent desktop: while the agent's phone rings, the screen pop shows
  the caller's IVR choice, display name and the flow's data, where a
  ``<script>`` (in the name and in the data) is shown as text and never runs; a disposition saved in the page is in the
  call's record in SQLite.

Screenshots of every page go to the test's tmp dir (``.../browser/shots/``;
each path is printed)."""
from __future__ import annotations

import sqlite3
import time
import urllib.error
import urllib.request

import pytest

from browserkit import Browser, Select, browser_problem
from engine_proc import Engine
from sipua import UA
from test_queue_behaviour import api, config, wait_until

from sipagent.store.eventlog import event_log_path
from sipagent.store.pin import hash_secret

pytestmark = [pytest.mark.sip,
              pytest.mark.skipif(browser_problem() is not None, reason=str(browser_problem()))]

POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
          "connect-src 'self'; frame-ancestors 'none'")
PASSWORDS = {"ops": "ops-password-1", "boss": "boss-password-1", "alice": "alice-password-1"}
# The flow's data and the caller's display name carry markup: the desktop
# must show both as text.
SCRIPT = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
CALLER_NAME = "<script>window.pwned = 3</script>Eve"
CHOOSE_THEN_QUEUE = (
    "async def flow(call):\n"
    "    await call.answer()\n"
    "    choice = await call.gather(None, max_digits=1, timeout=8.0, valid='1|2')\n"
    f"    await call.enqueue('support', data={{'choice': choice, 'note': {SCRIPT!r}}})\n")


def console_config(ports, workdir, prompts_dir, agents: dict, **queue) -> dict:
    cfg = config(ports, workdir, prompts_dir, agents, {"support": {"ring_timeout": 10, **queue}})
    cfg["users"] = {
        "ops": {"role": "admin", "password_hash": hash_secret(PASSWORDS["ops"], log2_n=10)},
        "boss": {"role": "supervisor", "password_hash": hash_secret(PASSWORDS["boss"], log2_n=10)},
    }
    if "alice" in agents:
        cfg["users"]["alice"] = {"role": "agent", "agent": "alice",
                                 "password_hash": hash_secret(PASSWORDS["alice"], log2_n=10)}
    cfg["desktop"] = {"dispositions": ["sale", "no_sale", "callback"]}
    return cfg


def url(engine, path: str = "/") -> str:
    return f"http://127.0.0.1:{engine.http_port}{path}"


def log_in(browser, engine, user: str, password: str | None = None) -> None:
    browser.open(url(engine))
    browser.wait_css("#username").send_keys(user)
    browser.find("#password").send_keys(password or PASSWORDS[user])
    browser.find("#login-submit").click()


def blocked(browser) -> list[str]:
    """What the browser's console says about blocked scripts or styles and
    about script errors (a refused API request, a 401 say, is expected)."""
    return [e["message"] for e in browser.console()
            if "Content Security Policy" in e["message"]
            or ("Uncaught" in e["message"] and e["level"] == "SEVERE")]


def test_login_policy_csrf_and_logout(ports, workdir, prompts_dir, tmp_path):
    cfg = console_config(ports, workdir, prompts_dir, {"alice": {"uri": "sip:alice@127.0.0.1:9",
                                                                 "queues": ["support"]}})
    with Engine(workdir, cfg) as engine, Browser(ports(), tmp_path / "browser") as browser:
        with urllib.request.urlopen(url(engine), timeout=5) as r:
            assert r.headers["Content-Security-Policy"] == POLICY
        browser.open(url(engine))
        browser.wait_css("#login-form")
        assert browser.js("return location.hash") == "#/login"
        assert not browser.find("#top").is_displayed()         # no navigation before login
        # Nothing inline the policy would have to block, one script, same origin.
        assert browser.js("return document.querySelectorAll("
                          "'script:not([src]), style, [style]').length") == 0
        assert browser.js("return [...document.scripts].map(s => s.src)") == [
            url(engine, "/console/app.js")]
        browser.shot("login")

        log_in(browser, engine, "ops", "not-the-password")
        assert "Wrong user name or password" in browser.wait_css("#login-error").text
        browser.find("#password").send_keys(PASSWORDS["ops"])
        browser.find("#login-submit").click()
        browser.wait_css("#wallboard .queue-card")
        assert browser.js("return location.hash") == "#/wallboard"
        assert "ops (admin)" in browser.find("#who").text

        # The session cookie alone does not change anything: a POST without
        # the CSRF token is refused, the same POST with it goes through.
        send = ("const [path, token] = arguments; const done = arguments[arguments.length - 1];"
                "const headers = {'Content-Type': 'application/json'};"
                "if (token) headers['X-CSRF-Token'] = token;"
                "fetch(path, {method: 'POST', headers, body: '{\"reason\": \"csrf\"}',"
                "             credentials: 'same-origin'})"
                ".then(async r => done([r.status, await r.text()]));")
        status, text = browser.driver.execute_async_script(send, "/api/agents/alice/pause", None)
        assert (status, text.strip()) == (403, "CSRF token missing or wrong")
        status, text = browser.driver.execute_async_script(send, "/api/agents/alice/pause",
                                                           "forged-token")
        assert status == 403
        assert api(engine, "GET", "/api/agents")[1]["agents"][0]["state"] == "available"
        token = browser.js("return sessionStorage.getItem('sipacd.csrf')")
        status, _ = browser.driver.execute_async_script(send, "/api/agents/alice/pause", token)
        assert status == 200
        assert api(engine, "GET", "/api/agents")[1]["agents"][0]["state"] == "paused"

        # Logout ends the session on the engine, not just in this browser.
        session = browser.driver.get_cookie("sipacd_session")["value"]
        browser.find("#logout").click()
        browser.wait_css("#login-form")
        assert browser.js("return sessionStorage.getItem('sipacd.csrf')") is None
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(url(engine, "/api/session"), headers={
                "Cookie": f"sipacd_session={session}"}), timeout=5)
        assert refused.value.code == 401

        # A session that ends under an open page (a 401 anywhere): back to login.
        log_in(browser, engine, "boss")
        browser.wait_css("#wallboard .queue-card")
        assert "boss (supervisor)" in browser.find("#who").text
        assert browser.find_all('a[href="#/admin"]') == []          # admins only
        browser.driver.delete_cookie("sipacd_session")
        browser.find('a[href="#/agents"]').click()
        browser.wait_css("#login-form")
        assert browser.js("return location.hash") == "#/login"
        assert blocked(browser) == []


def test_supervisor_sees_live_changes_and_adds_an_agent(ports, workdir, prompts_dir, tmp_path):
    with UA(ports(), log_dir=workdir, name="agents") as phones, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        phones.request("auto_answer", user="dave", after=0.5)
        cfg = console_config(ports, workdir, prompts_dir,
                             {"alice": {"uri": phones.uri("alice"), "queues": ["support"]}})
        with Engine(workdir, cfg) as engine, Browser(ports(), tmp_path / "browser") as browser:
            log_in(browser, engine, "ops")
            browser.wait_css("#wallboard .queue-card")
            browser.open(url(engine, "/#/agents"))
            browser.wait_css('#agents tr[data-agent="alice"][data-state="available"]')

            # An agent's state change (by another client) shows without a reload.
            assert api(engine, "POST", "/api/agents/alice/pause", {"reason": "lunch"})[0] == 200
            t0 = time.monotonic()
            row = browser.wait_css('#agents tr[data-agent="alice"][data-state="paused"]',
                                   timeout=1.0)
            print(f"agent pause on the page after {time.monotonic() - t0:.3f} s")
            assert "lunch" in row.text
            browser.shot("agents")

            # A caller queued over SIP is on the wallboard within a second.
            browser.find('a[href="#/wallboard"]').click()
            browser.wait_css('#wallboard [data-waiting="support"]')
            assert browser.text('[data-waiting="support"] .value') == "0"
            caller.request("call", call="c1", to=engine.number("100"))
            caller.wait_state("c1", "CONFIRMED")
            wait_until(lambda: api(engine, "GET", "/api/queues")[1]["queues"]["support"]
                       ["waiting"] == 1, 5, "the caller waiting")
            t0 = time.monotonic()
            browser.wait(lambda b: b.text('[data-waiting="support"] .value') == "1",
                         1.0, "the waiting caller on the wallboard")
            print(f"queued caller on the wallboard after {time.monotonic() - t0:.3f} s")
            # The longest wait ticks on the page by itself: no request for it.
            fetches = ("return performance.getEntriesByType('resource')"
                       ".filter(e => e.name.includes('/api/wallboard')).length")
            before = browser.js(fetches)
            first = browser.text('[data-longest="support"] .value')
            browser.wait(lambda b: b.text('[data-longest="support"] .value') != first,
                         2.5, "the longest wait ticking")
            assert browser.js(fetches) == before
            browser.shot("wallboard")
            browser.find("#big-screen").click()
            browser.wait(lambda b: b.js("return document.body.classList.contains('big')"),
                         2, "big-screen mode")
            assert not browser.find("#top").is_displayed()
            browser.shot("wallboard-big")
            browser.find("#leave-big").click()

            # An agent added in the admin page takes the waiting caller at once.
            browser.open(url(engine, "/#/admin"))
            browser.wait_css('#admin-agents tr[data-agent="alice"]')
            browser.find("#agent-id").send_keys("dave")
            browser.find("#agent-name").send_keys("Dave")
            browser.find("#agent-uri").send_keys(phones.uri("dave"))
            browser.find("#agent-queues").send_keys("support:0")
            browser.find("#agent-save").click()
            ring = phones.wait_event({"ev": "incoming", "user": "dave"}, timeout=10)
            call_id = ring["headers"]["X-Sipacd-Call-Id"]
            browser.wait_css('#admin-agents tr[data-agent="dave"]')
            browser.wait_text("#admin-audit", "dave")
            browser.shot("admin")
            phones.wait_state(ring["call"], "CONFIRMED")

            browser.open(url(engine, "/#/calls"))
            row = browser.wait_css(f'#conversations tr[data-call="{call_id}"]', timeout=3)
            assert "dave" in row.text and "support" in row.text
            browser.wait_css(f'#channels tr[data-call="{call_id}"]')
            browser.shot("calls")
            browser.open(url(engine, "/#/agents"))
            browser.wait_css('#agents tr[data-agent="dave"][data-state="busy"]')

            caller.request("hangup", call="c1")
            phones.wait_state(ring["call"], "DISCONNECTED", timeout=5)
            # The page's own buttons: alice is made ready again.
            browser.find('#agents tr[data-agent="alice"] button.ready').click()
            browser.wait_css('#agents tr[data-agent="alice"][data-state="available"]', timeout=2)
            browser.open(url(engine, "/#/reports"))
            browser.wait_css("#interval-table", timeout=10)
            assert browser.find_all("#chart-sl path.line")
            csv = browser.find("#csv-intervals").get_attribute("href")
            assert "format=csv" in csv
            # The what-if replays today's call with 2 agents.
            agents = browser.find("#whatif-agents")
            agents.clear()
            agents.send_keys("2")
            browser.find('#whatif-form button[type="submit"]').click()
            summary = browser.wait_css("#whatif-summary", timeout=10)
            assert summary.text.startswith("1 calls that day"), summary.text
            assert browser.find_all("#whatif-table tbody tr")
            browser.shot("reports")
            # The print stylesheet leaves the navigation and the forms out.
            browser.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
            assert not browser.find("#report-form").is_displayed()
            assert browser.find("#interval-table").is_displayed()
            browser.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
            assert blocked(browser) == []
            engine.assert_settled()


def test_agent_desktop_screen_pop_and_disposition(ports, workdir, prompts_dir, tmp_path):
    with UA(ports(), log_dir=workdir, name="agents") as phones, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        phones.request("auto_answer", user="alice", after=2.5)
        cfg = console_config(ports, workdir, prompts_dir,
                             {"alice": {"uri": phones.uri("alice"), "queues": ["support"]}},
                             wrap_up=30)
        (workdir / "flows" / "choose.py").write_text(CHOOSE_THEN_QUEUE)
        cfg["routes"] = [{"number": "100", "flow": "choose", "queue": "support"}]
        with Engine(workdir, cfg) as engine, Browser(ports(), tmp_path / "browser") as browser:
            log_in(browser, engine, "alice")
            browser.wait_css("#my-state-name")
            assert browser.js("return location.hash") == "#/desktop"
            assert browser.find("#my-state-name").text == "available"

            caller.request("call", call="c1", to=engine.number("100"), from_name=CALLER_NAME)
            caller.wait_event({"ev": "media", "call": "c1"})
            caller.request("dtmf", call="c1", digits="2")
            ring = phones.wait_event({"ev": "incoming", "user": "alice"}, timeout=10)
            call_id = ring["headers"]["X-Sipacd-Call-Id"]
            # While the phone rings (it answers after 2.5 s): the screen pop.
            pop = browser.wait_css("#screen-pop .pop.ringing", timeout=2.0)
            assert not phones.events({"ev": "state", "call": ring["call"], "state": "CONFIRMED"})
            assert "2" in browser.find("#pop-ivr").text
            assert browser.find("#pop-name").text == CALLER_NAME
            data = browser.find("#pop-data").text
            assert SCRIPT in data, data          # shown as text ...
            assert browser.js("return window.pwned") is None      # ... and never run
            assert browser.js("return document.querySelectorAll('main script, "
                              "main img').length") == 0
            assert pop.is_displayed()
            browser.shot("desktop-ringing")

            phones.wait_state(ring["call"], "CONFIRMED")
            browser.wait_css("#screen-pop .pop.connected", timeout=3)
            # Hold and resume from the desktop: the caller hears the music.
            browser.wait_css("#call-controls #call-hold").click()
            browser.wait_css("#call-controls #call-resume", timeout=2)
            assert api(engine, "GET", "/api/calls")[1]["calls"][0]["phase"] == "held"
            browser.shot("desktop-on-call")
            browser.find("#call-resume").click()
            browser.wait_css("#call-controls #call-hold", timeout=2)
            assert api(engine, "GET", "/api/calls")[1]["calls"][0]["phase"] == "talking"
            caller.request("hangup", call="c1")
            phones.wait_state(ring["call"], "DISCONNECTED", timeout=5)
            browser.wait(lambda b: b.text("#my-state-name") == "wrap-up", 3, "wrap-up")
            code = browser.wait_css("#disposition-code")
            if code.tag_name == "select":
                Select(code).select_by_value("sale")
            else:
                code.send_keys("sale")
            browser.find("#disposition-note").send_keys("wants the <b>blue</b> one")
            browser.find("#disposition-save").click()
            browser.wait_css("#disposition-saved")
            browser.shot("desktop-wrap-up")
            assert blocked(browser) == []

            def record():
                conn = sqlite3.connect(event_log_path(workdir / "data").resolve().as_uri()
                                       + "?mode=ro", uri=True)
                try:
                    return conn.execute("SELECT disposition, disposition_note FROM call_record "
                                        "WHERE call_id = ?", (call_id,)).fetchone()
                finally:
                    conn.close()
            assert wait_until(lambda: record() == ("sale", "wants the <b>blue</b> one"), 5,
                              "the disposition in the call record")
            assert api(engine, "POST", "/api/agents/alice/end_wrap_up")[0] == 200
            engine.assert_settled()
