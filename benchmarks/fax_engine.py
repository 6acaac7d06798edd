"""Fax capacity of one engine process: N faxes received at once, and what
each costs the engine in CPU.

    python benchmarks/fax_engine.py                          # N = 1, 4, 8; 2 dense pages
    python benchmarks/fax_engine.py --concurrency 1,2 --pages 1 --json
    python benchmarks/fax_engine.py --keep                   # keep logs and TIFFs

How it measures
---------------
- The engine: ``python -m sipagent run -c FILE`` (tests/engine_proc.Engine)
  with one fax number, ``{"number": "350", "flow": "fax_receive", "fax":
  true}``: it answers straight into T.30 receive and files TIFF and PDF in
  its data directory (a temporary folder).  Log level warning, so the log
  itself costs next to nothing.
- The senders: N ``python -m simphones.fax_machine --mode send`` processes
  (tests/faxkit.FaxUA), each its own pjsua2 library with its own media
  clock, all started at once, each dialling sip:350@127.0.0.1:ENGINE_PORT
  with the same document (tests/faxkit.make_document: A4 TIFF-F, 204x196
  dpi, 28 text lines per page, so pages are dense and take about 30 s of
  line time each at V.17).
- A round runs from the first sender's start until every sender has exited
  and the engine has filed all N faxes (``GET /api/fax/log``), so the
  engine's CPU covers call set-up, media, the modems, filing the TIFF and
  writing the PDF.  Engine CPU is utime + stime of its PID from
  /proc/PID/stat; tiff2pdf, which the engine runs as a child, is shown
  apart (cutime + cstime: a child's CPU lands there once it is reaped).
- Idle: the same engine's CPU over 5 s with no call before the first round,
  i.e. its asyncio loop polling pjsua.  "above idle" subtracts that share
  over the round's wall time, which leaves what the faxes themselves cost.
- Per round: faxes ok / total (the senders' "fax" events), engine CPU
  seconds, CPU seconds per page, % of one core over the round, the median
  line seconds per page (each sender's line_seconds / pages) and whether
  every received TIFF is pixel-identical to the document
  (fax_documents.same_pixels, read through FaxStore once the engine has
  stopped, so the comparison is not charged to the engine).
- Every process is stopped by its PID (SIGTERM, then SIGKILL, with
  timeouts); a round is cut after --timeout seconds; all traffic is on
  127.0.0.1, on ports that passed a bind test and were reserved with the
  test suite's lock files, so runs beside the tests do not collide.

Measured here: one run on a shared, noisy 2-core VM (November 2026), so
read the numbers as orders of magnitude:

    .venv/bin/python benchmarks/fax_engine.py --keep     (N = 1,4,8; 2 pages)

    document: 2 A4 pages, 78997 bytes T.6; idle engine 3.20 % of one core
    (0.16 s CPU in 5.0 s)

      N ok/total pages wall s CPU s tiff2pdf s CPU s/page above idle % core line s/page identical
      1      1/1     2   71.1  2.31       0.00      1.155      0.017    3.2        34.5       1/1
      4      4/4     8   71.7  2.75       0.03      0.344      0.057    3.8        34.5       4/4
      8      8/8    16   73.0  3.51       0.05      0.219      0.073    4.8        34.5       8/8

    Every fax ok at V.17 14400 bit/s with ECM, 68.2 s of line time each,
    every received TIFF pixel-identical.  The engine's cost is mostly its
    idle poll (3.2 % of a core); 8 faxes at once added about 1.6 % of a core,
    0.07-0.09 s of CPU per page (slope from N=1 to N=8: 1.2 s for 14 more
    pages).  One fax on its own is inside the noise of the idle figure
    ("above idle" came out at -0.05 s/page in an earlier 1-page run).  On
    this machine the senders (one pjsua2 process each) cost more than the
    engine that receives from all of them.

Quote ratios and medians from one run and compare runs made side by side;
absolute CPU on a shared 2-core machine drifts (DESIGN.md).
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from engine_proc import Engine  # noqa: E402
from faxkit import FaxUA, make_document  # noqa: E402
from portlocks import PortAllocator  # noqa: E402
from sipagent.fax.documents import same_pixels  # noqa: E402
from sipagent.fax.store import FaxStore  # noqa: E402

FAX_NUMBER = "350"
IDLE_SECONDS = 5.0
# Out of a round's --timeout, what the senders do not get: their exit
# (a 3 s linger, then BYE) and the engine's filing of TIFF and PDF.
ROUND_TAIL = 30.0


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(the process's own CPU, its reaped children's CPU), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def engine_config(ports: PortAllocator, data_dir: Path, token: str, fax_timeout: float) -> dict:
    return {
        "sip": {"listen": "127.0.0.1", "port": ports.get(), "max_calls": 50},
        "http": {"listen": "127.0.0.1", "port": ports.get(),
                 "tokens": {"bench": {"role": "admin", "token": token}}},
        "data": {"dir": str(data_dir)},
        "log": {"level": "warning", "format": "json", "pjsip_level": 1},
        "routes": [{"number": FAX_NUMBER, "flow": "fax_receive", "fax": True}],
        # The engine cuts a fax that outlasts the round rather than keep it.
        "fax": {"ident": "SIPACD BENCH", "timeout": fax_timeout},
    }


class FaxLog:
    """The engine's received-fax log over its HTTP API (admin token)."""

    def __init__(self, engine: Engine, token: str):
        self.engine, self.token = engine, token

    def received(self) -> list[dict]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.engine.http_port}/api/fax/log?direction=receive&limit=1000",
            headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=5) as r:
            body = json.loads(r.read())
        return body["faxes"] if isinstance(body, dict) else body


def idle_share(engine: Engine, seconds: float) -> dict:
    time.sleep(2.0)                       # start-up work (store, prompts) settles first
    c0, t0 = cpu_seconds(engine.proc.pid)[0], time.monotonic()
    time.sleep(seconds)
    cpu, wall = cpu_seconds(engine.proc.pid)[0] - c0, time.monotonic() - t0
    return {"seconds": round(wall, 2), "cpu_s": round(cpu, 3),
            "core_pct": round(100 * cpu / wall, 2)}


def run_round(engine: Engine, faxlog: FaxLog, n: int, doc: Path, ports: PortAllocator,
              workdir: Path, timeout: float, known: set[str]) -> dict:
    """N senders at once; the engine's CPU from their start until every fax
    is filed."""
    rdir = workdir / f"round-{n}"
    rdir.mkdir()
    deadline = time.monotonic() + timeout
    fax_timeout = max(20.0, timeout - ROUND_TAIL)
    sip_ports = [ports.get() for _ in range(n)]
    rtp_ports = [ports.block(4) for _ in range(n)]
    own0, kids0 = cpu_seconds(engine.proc.pid)
    t0, wall0 = time.monotonic(), time.time()
    senders: list[FaxUA] = []
    results: list[dict | None] = []
    try:
        for i in range(n):
            senders.append(FaxUA(f"sender-{i}", rdir, "--port", str(sip_ports[i]),
                                 "--rtp-port", str(rtp_ports[i]), "--mode", "send",
                                 "--tiff", str(doc), "--ident", f"BENCH {i}",
                                 "--dial", engine.number(FAX_NUMBER),
                                 "--timeout", f"{fax_timeout:g}"))
        for s in senders:
            results.append(_event(s, "fax", deadline - time.monotonic()))
        for s in senders:
            _event(s, "exit", min(15.0, deadline - time.monotonic()))
    finally:
        for s in senders:
            s.close(timeout=5)
    # Filing (TIFF in place, PDF written, row committed) ends the round.
    filed, log_error = _wait_filed(faxlog, known, n, deadline)
    own1, kids1 = cpu_seconds(engine.proc.pid)
    wall = time.monotonic() - t0
    ok = [r for r in results if r and r.get("ok")]
    pages_ok = sum(r.get("pages", 0) for r in ok)
    cpu = own1 - own0
    out = {
        "concurrency": n, "ok": len(ok), "total": n, "pages_ok": pages_ok,
        "wall_s": round(wall, 1), "engine_cpu_s": round(cpu, 2),
        "engine_children_cpu_s": round(kids1 - kids0, 2),
        "core_pct": round(100 * cpu / wall, 1),
        "cpu_per_page_s": round(cpu / pages_ok, 3) if pages_ok else None,
        "line_s_per_page_median": round(statistics.median(
            r["line_seconds"] / r["pages"] for r in ok if r.get("pages")), 1) if ok else None,
        "failures": [_failure(s, r) for s, r in zip(senders, results) if not (r and r.get("ok"))],
        "engine_records": [{k: f.get(k) for k in ("id", "ok", "pages", "status_text",
                                                   "remote_ident", "seconds")} for f in filed],
        "window": [wall0, time.time()],
    }
    if log_error:
        out["engine_log_error"] = log_error
    if len(ok) < n or len(filed) < n:
        out["engine_log_tail"] = engine.log_tail(30)
    if engine.proc.poll() is not None:
        out["engine_exit_code"] = engine.proc.returncode
    return out


def _event(sender: FaxUA, ev: str, timeout: float) -> dict | None:
    try:
        return sender.wait_event(ev, max(0.1, timeout))
    except AssertionError as e:           # no such event: timeout or the process exited
        print(f"  {sender.name}: {str(e).splitlines()[0][:300]}", file=sys.stderr)
        return None


def _failure(sender: FaxUA, result: dict | None) -> dict:
    if result is None:
        states = [e.get("state") for e in sender.events if e.get("ev") == "state"]
        return {"sender": sender.name, "result": None, "states": states,
                "log": str(sender.log_path)}
    return {"sender": sender.name, **{k: result.get(k) for k in
                                       ("status", "status_text", "pages", "line_seconds")}}


def _wait_filed(faxlog: FaxLog, known: set[str], n: int, deadline: float
                ) -> tuple[list[dict], str | None]:
    """The engine's new received-fax records, waiting until there are n
    (or the round's deadline)."""
    while True:
        try:
            new = [f for f in faxlog.received() if f["id"] not in known]
        except (OSError, urllib.error.HTTPError, ValueError, KeyError) as e:
            return [], f"{type(e).__name__}: {e}"
        if len(new) >= n or time.monotonic() >= deadline:
            known.update(f["id"] for f in new)
            return new, None
        time.sleep(0.5)


def check_pixels(rounds: list[dict], data_dir: Path, doc: Path) -> None:
    """Each round's received TIFFs against the document, read through the
    store once the engine has stopped.  Rounds whose records the API did not
    give are matched by time."""
    store = FaxStore(data_dir)
    try:
        everything = store.faxes("receive", limit=1000)
        for r in rounds:
            ids = [f["id"] for f in r["engine_records"]]
            if not ids and "engine_log_error" in r:
                lo, hi = r["window"]
                ids = [f.id for f in everything if lo <= f.started <= hi]
            same = 0
            for fax_id in ids:
                tiff = store.fax(fax_id).tiff
                if tiff is not None and tiff.is_file() and same_pixels(doc, tiff):
                    same += 1
            r["pixel_identical"] = same
            r["received_files"] = len(ids)
    finally:
        store.close()


def table(out: dict) -> str:
    idle = out["idle"]
    lines = [f"document: {out['pages']} A4 pages, {out['document_bytes']} bytes T.6; "
             f"idle engine {idle['core_pct']:.2f} % of one core ({idle['cpu_s']} s CPU "
             f"in {idle['seconds']} s)",
             "",
             f"{'N':>3} {'ok/total':>8} {'pages':>5} {'wall s':>7} {'CPU s':>6} {'tiff2pdf s':>10} "
             f"{'CPU s/page':>10} {'above idle':>10} {'% core':>7} {'line s/page':>11} "
             f"{'identical':>9}"]
    for r in out["rounds"]:
        def f(v, fmt):
            return "-" if v is None else format(v, fmt)
        lines.append(
            f"{r['concurrency']:>3} {str(r['ok']) + '/' + str(r['total']):>8} {r['pages_ok']:>5} "
            f"{r['wall_s']:>7.1f} {r['engine_cpu_s']:>6.2f} {r['engine_children_cpu_s']:>10.2f} "
            f"{f(r['cpu_per_page_s'], '.3f'):>10} "
            f"{f(r.get('cpu_per_page_above_idle_s'), '.3f'):>10} "
            f"{r['core_pct']:>7.1f} {f(r['line_s_per_page_median'], '.1f'):>11} "
            f"{str(r.get('pixel_identical', '-')) + '/' + str(r.get('received_files', '-')):>9}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--concurrency", default="1,4,8",
                    help="comma-separated numbers of faxes at once, one round each")
    ap.add_argument("--pages", type=int, default=2)
    ap.add_argument("--lines", type=int, default=28, help="text lines per page (density)")
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds one round may take")
    ap.add_argument("--idle-seconds", type=float, default=IDLE_SECONDS,
                    help="engine CPU with no call, measured before the first round")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs, TIFFs)")
    args = ap.parse_args(argv)
    rounds_n = [int(x) for x in args.concurrency.split(",") if x.strip()]
    if not rounds_n or min(rounds_n) < 1:
        ap.error("--concurrency: one or more positive whole numbers, e.g. 1,4,8")

    work = Path(tempfile.mkdtemp(prefix="sipacd-faxengine-"))
    ports = PortAllocator()
    token = secrets.token_hex(16)
    data_dir = work / "data"
    doc = make_document(work / "doc.tif", pages=args.pages, lines=args.lines)
    out = {"command": " ".join([Path(sys.executable).name, *sys.argv]),
           "pages": args.pages, "document_bytes": doc.stat().st_size, "rounds": []}
    try:
        cfg = engine_config(ports, data_dir, token, max(20.0, args.timeout - ROUND_TAIL))
        engine = Engine(work, cfg, start_timeout=60)
        try:
            out["idle"] = idle_share(engine, args.idle_seconds)
            if not args.json:
                print(f"idle engine: {out['idle']['core_pct']} % of one core", flush=True)
            faxlog, known = FaxLog(engine, token), set()
            for n in rounds_n:
                if engine.proc.poll() is not None:
                    print(f"engine exited ({engine.proc.returncode}); no round N={n}",
                          file=sys.stderr)
                    break
                r = run_round(engine, faxlog, n, doc, ports, work, args.timeout, known)
                idle_cpu = out["idle"]["core_pct"] / 100 * r["wall_s"]
                r["cpu_per_page_above_idle_s"] = (
                    round((r["engine_cpu_s"] - idle_cpu) / r["pages_ok"], 3)
                    if r["pages_ok"] else None)
                out["rounds"].append(r)
                if not args.json:
                    print(f"N={n}: {r['ok']}/{n} ok, {r['engine_cpu_s']} s engine CPU, "
                          f"{r['core_pct']} % of one core", flush=True)
        finally:
            out["engine_exit_code"] = engine.stop()
        check_pixels(out["rounds"], data_dir, doc)
    finally:
        ports.release_all()
        if args.keep:
            out["workdir"] = str(work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    for r in out["rounds"]:
        r.pop("window", None)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print()
        print(table(out))
        for r in out["rounds"]:
            if r["failures"] or r.get("engine_log_error"):
                api = f"; log API: {r['engine_log_error']}" if r.get("engine_log_error") else ""
                print(f"\nN={r['concurrency']}: failures {json.dumps(r['failures'])}{api}")
            if r.get("engine_log_tail"):
                print(f"engine log (last lines):\n{r['engine_log_tail']}")
        if args.keep:
            print(f"\nwork folder: {work}")
    ok = all(r["ok"] == r["total"] and r.get("pixel_identical") == r["total"]
             for r in out["rounds"]) and len(out["rounds"]) == len(rounds_n)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
