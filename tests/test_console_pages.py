"""The console's serving, without a browser: every answer carries the
security headers, files are found only inside the console's own folder, the
installed package holds every file, and no script builds markup from
strings (the pages put data in with textContent and DOM calls only).
The browser itself is tested in test_console_browser.py."""
from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

from apikit import serve
from sipagent.api.console.pages import CONTENT_SECURITY_POLICY, STATIC

REPO = Path(__file__).resolve().parent.parent
POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
          "connect-src 'self'; frame-ancestors 'none'")


def fetch(tmp_path, ports, paths):
    async def scenario(client, engine):
        out = {}
        for path in paths:
            r = await client.get(path, allow_redirects=False)
            out[path] = (r.status, dict(r.headers), await r.read())
        return out
    return serve(tmp_path, ports, scenario)


def test_pages_and_files_carry_the_security_headers(tmp_path, ports):
    got = fetch(tmp_path, ports, ["/", "/console/app.js", "/console/console.css",
                                  "/console/missing.js"])
    assert CONTENT_SECURITY_POLICY == POLICY
    for path, (status, headers, _) in got.items():
        assert headers["Content-Security-Policy"] == POLICY, path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "no-referrer", path
    for path in ("/", "/console/app.js", "/console/console.css"):
        assert got[path][0] == 200, path
        assert got[path][1]["Cache-Control"] == "no-cache", path
        assert "Last-Modified" in got[path][1], path
    assert got["/"][1]["Content-Type"] == "text/html; charset=utf-8"
    assert got["/console/app.js"][1]["Content-Type"] == "text/javascript; charset=utf-8"
    assert got["/console/console.css"][1]["Content-Type"] == "text/css; charset=utf-8"
    assert got["/console/missing.js"][0] == 404


def test_no_file_outside_the_console_folder_is_served(tmp_path, ports):
    bad = ["/console/../pages.py", "/console/%2e%2e/pages.py", "/console/..%2Fpages.py",
           "/console/%2e%2e%2f%2e%2e%2fserver.py", "/console//etc/passwd",
           "/console/index.html/", "/console/.", "/console/%00"]
    got = fetch(tmp_path, ports, bad)
    served = {path: status for path, (status, _, _) in got.items() if status != 404}
    assert served == {}, served
    # ...and the sources that exist beside it were never what came back.
    assert not any(b"add_console_routes" in body for _, _, body in got.values())


class _Markup(HTMLParser):
    def __init__(self):
        super().__init__()
        self.inline_scripts, self.styles, self.scripts = 0, 0, []
        self.style_attrs, self.handlers = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            if attrs.get("src"):
                self.scripts.append(attrs["src"])
            else:
                self.inline_scripts += 1
        if tag == "style":
            self.styles += 1
        if "style" in attrs:
            self.style_attrs.append(tag)
        self.handlers += [k for k in attrs if k.startswith("on")]


def test_the_shell_has_no_inline_script_or_style_and_nothing_from_elsewhere():
    page = _Markup()
    html = (STATIC / "index.html").read_text()
    page.feed(html)
    assert page.scripts == ["/console/app.js"]
    assert (page.inline_scripts, page.styles, page.style_attrs, page.handlers) == (0, 0, [], [])
    everything = "\n".join(p.read_text() for p in STATIC.iterdir())
    # Only same-origin references (the SVG namespace is a name, not a fetch).
    remote = set(re.findall(r"https?://[^\s\"')]+", everything)) - {"http://www.w3.org/2000/svg"}
    assert remote == set()


def test_no_script_turns_strings_into_markup():
    """Data reaches the page as text: no innerHTML and its relatives, no
    eval, no style attribute written from script (the policy refuses it)."""
    forbidden = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|"
                           r"\beval\(|new Function|setAttribute\(\s*[\"']style|"
                           r"setAttribute\(\s*[\"']on|createContextualFragment|DOMParser")
    scripts = sorted(STATIC.glob("*.js"))
    assert len(scripts) >= 10
    found = [f"{p.name}: {m.group(0)}" for p in scripts for m in forbidden.finditer(p.read_text())]
    assert found == []


def test_the_built_package_holds_every_console_file(tmp_path):
    """What setuptools puts in a wheel (build_py: sources and package data,
    no extension build) includes every static file."""
    out = tmp_path / "build"
    subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(out)],
                   cwd=REPO, check=True, capture_output=True)
    built = out / "sipagent" / "api" / "console" / "static"
    want = sorted(p.name for p in STATIC.iterdir() if p.is_file())
    assert sorted(p.name for p in built.iterdir()) == want


def test_an_unchanged_file_is_not_sent_again(tmp_path, ports):
    """no-cache means "ask first": the browser's If-Modified-Since gets a 304."""
    async def scenario(client, engine):
        first = await client.get("/console/app.js")
        again = await client.get("/console/app.js", headers={
            "If-Modified-Since": first.headers["Last-Modified"]})
        return first.status, again.status, await again.read()
    assert serve(tmp_path, ports, scenario) == (200, 304, b"")
