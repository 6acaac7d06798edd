"""Test documents and checks shared by the fax tests and benchmarks.

Pages are rendered by ghostscript from a small PostScript program, so each
test has a fresh multi-page TIFF-F (1728 px wide, 204x196 dpi, T.6) whose
pages differ from each other: a page swapped or lost shows up.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

_PAGE_PS = """%!PS
/Helvetica findfont 28 scalefont setfont
1 1 {pages} {{ /p exch def
  72 760 moveto (sipacd fax test: page ) show p 3 string cvs show ( of {pages}) show
  0 1 {lines} {{ /i exch def
    72 720 i 22 mul sub moveto (Page ) show p 3 string cvs show (, line ) show
    i 3 string cvs show ( - the quick brown fox jumps over) show }} for
  newpath 80 60 moveto 520 60 p 40 mul add lineto 3 setlinewidth stroke
  showpage
}} for
"""


def make_document(path: Path, pages: int = 3, lines: int = 28) -> Path:
    """A `pages`-page TIFF-F at `path` (text lines, a diagonal that differs
    per page)."""
    gs = shutil.which("gs")
    assert gs, "ghostscript (Debian: ghostscript) is needed for fax test pages"
    ps = path.with_suffix(".ps")
    ps.write_text(_PAGE_PS.format(pages=pages, lines=lines))
    subprocess.run([gs, "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=tiffg4",
                    "-r204x196", "-sPAPERSIZE=a4", "-dFIXEDMEDIA", "-dPDFFitPage",
                    f"-sOutputFile={path}", str(ps)], check=True, timeout=60)
    return path


def assert_pixel_identical(sent: Path, received: Path) -> None:
    """Same page count, sizes, resolutions and every pixel."""
    from sipagent.mediaports.tiffpages import read_pages

    a, b = read_pages(sent), read_pages(received)
    assert len(b) == len(a), f"{len(a)} pages sent, {len(b)} received"
    for n, (pa, pb) in enumerate(zip(a, b), 1):
        assert (pb.width, pb.height) == (pa.width, pa.height), f"page {n} size differs"
        assert (pb.x_dpi, pb.y_dpi) == (pa.x_dpi, pa.y_dpi), f"page {n} resolution differs"
        if pb.bitmap != pa.bitmap:
            row = pa.width // 8 + (pa.width % 8 > 0)
            bad = sum(pa.bitmap[i:i + row] != pb.bitmap[i:i + row]
                      for i in range(0, len(pa.bitmap), row))
            raise AssertionError(f"page {n}: {bad} of {pa.height} rows differ")


class FaxUA:
    """One `python -m simphones.fax_machine` process: JSON events from its stdout,
    its log in `log_path`; stopped by PID (quit, SIGTERM, SIGKILL)."""

    def __init__(self, name: str, log_dir: Path, *args: str):
        import os
        import subprocess
        import sys
        import threading

        repo = Path(__file__).resolve().parent.parent
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo), env.get("PYTHONPATH")]))
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        self._log = open(self.log_path, "ab")
        self.events: list[dict] = []
        self._cond = threading.Condition()
        self._eof = False
        self.proc = subprocess.Popen([sys.executable, "-m", "simphones.fax_machine", *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, cwd=repo, env=env)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        import json

        for raw in self.proc.stdout:
            try:
                ev = json.loads(raw)
            except ValueError:
                ev = {"ev": "raw", "line": raw.decode(errors="replace")}
            with self._cond:
                self.events.append(ev)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def wait_event(self, ev: str, timeout: float, **match) -> dict:
        """First event named `ev` whose fields include `match`."""
        import time

        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events:
                    if e.get("ev") == ev and all(e.get(k) == v for k, v in match.items()):
                        return e
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    why = "process exited" if self._eof else f"timeout after {timeout} s"
                    tail = self.log_path.read_text(errors="replace").splitlines()[-20:]
                    raise AssertionError(f"{self.name}: no {ev!r} event {match or ''} ({why}); events: "
                                         f"{self.events}\nlog tail:\n" + "\n".join(tail))
                self._cond.wait(left)

    def close(self, timeout: float = 8.0) -> int | None:
        from procs import quit_then_stop

        quit_then_stop(self.proc, timeout=timeout)
        self._reader.join(2)
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> "FaxUA":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_PCMA = "m=audio [media_port] RTP/AVP 8\na=rtpmap:8 PCMA/8000\n"
_T38 = ("m=image [media_port] udptl t38\na=T38FaxVersion:0\na=T38MaxBitRate:14400\n"
        "a=T38FaxRateManagement:transferredTCF\na=T38FaxUdpEC:t38UDPRedundancy\n")


def _sipp_request(method: str, cseq: int, *, sdp: str | None = None, new_via: bool = True,
                  to_tag: bool = True, contact: bool = True) -> str:
    """One request of a SIPp scenario (to sip:fax@...), in its <send>."""
    via = ("Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]" if new_via
           else "[last_Via:]")
    lines = [f"{method} sip:fax@[remote_ip]:[remote_port] SIP/2.0", via,
             "From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]",
             "To: <sip:fax@[remote_ip]:[remote_port]>" + ("[peer_tag_param]" if to_tag else ""),
             "Call-ID: [call_id]", f"CSeq: {cseq} {method}"]
    if contact:
        lines.append("Contact: <sip:sipp@[local_ip]:[local_port]>")
    lines.append("Max-Forwards: 70")
    if sdp is None:
        body = "Content-Length: 0\n\n"
    else:
        body = ("Content-Type: application/sdp\nContent-Length: [len]\n\n"
                f"v=0\no=sipp 1 {cseq} IN IP4 [local_ip]\ns=-\nc=IN IP4 [media_ip]\nt=0 0\n{sdp}")
    retrans = ' retrans="500"' if method != "ACK" else ""
    return f"  <send{retrans}><![CDATA[\n" + "\n".join(lines) + "\n" + body + "]]></send>\n"


def _sipp_refused_reinvite(cseq: int, sdp: str) -> str:
    """A re-INVITE the fax machine must refuse with 488, and its ACK."""
    return (_sipp_request("INVITE", cseq, sdp=sdp)
            + '  <recv response="100" optional="true"/>\n  <recv response="488"/>\n'
            + _sipp_request("ACK", cseq, new_via=False, contact=False)
            + '  <pause milliseconds="300"/>\n')


SIPP_T38 = ('<?xml version="1.0" encoding="ISO-8859-1" ?>\n'
            '<scenario name="G.711 call, then T.38 re-INVITEs: image only, then audio + image">\n'
            + _sipp_request("INVITE", 1, sdp=_PCMA, to_tag=False)
            + '  <recv response="100" optional="true"/>\n  <recv response="180" optional="true"/>\n'
            '  <recv response="200"/>\n'
            + _sipp_request("ACK", 1)
            + '  <pause milliseconds="500"/>\n'
            + _sipp_refused_reinvite(2, _T38)
            + _sipp_refused_reinvite(3, _PCMA + _T38)
            + _sipp_request("BYE", 4, contact=False)
            + '  <recv response="200"/>\n</scenario>\n')


def run_sipp_t38(port: int, workdir: Path, ports) -> None:
    """SIPp calls sip:fax@127.0.0.1:`port` on G.711, re-INVITEs to T.38
    (image only, then audio + image), expects 488 to both, and hangs up."""
    scenario = Path(workdir) / "t38.xml"
    scenario.write_text(SIPP_T38)
    errors_file = Path(workdir) / "sipp_err.log"
    run = subprocess.run(
        ["sipp", f"127.0.0.1:{port}", "-sf", str(scenario), "-m", "1", "-i", "127.0.0.1",
         "-p", str(ports()), "-mp", str(ports.block(4)), "-timeout", "20s",
         "-timeout_error", "-trace_err", "-error_file", str(errors_file)],
        cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, timeout=40)
    errors = errors_file.read_text(errors="replace") if errors_file.exists() else ""
    assert run.returncode == 0, \
        f"sipp exit {run.returncode}: {run.stderr.decode()[-500:]}\n{errors[-2000:]}"
