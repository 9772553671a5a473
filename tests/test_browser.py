"""Both reports opened in headless Chromium: no script errors, sections shown, plots drawn,
the leaderboard sorts on a click, hostile names stay inert.

Chromium is driven over the DevTools protocol with a minimal WebSocket client written on the
standard library (RFC 6455: handshake, masked text frames out, unmasked frames in), so no
browser-automation package is needed. Skipped when ``/usr/bin/chromium`` is absent
(``apt-get install chromium``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from segmentlab.reports.eda import eda_report
from segmentlab.reports.html import CHROMIUM_FLAGS
from segmentlab.reports.study import study_report
from tests.test_reports import EDA_IDS, HOSTILE, STUDY_IDS, make_dataset, make_study

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Chromium at /usr/bin/chromium (apt-get install chromium)")
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 handshake constant


class WebSocket:
    """Just enough of a WebSocket client to talk to Chromium's DevTools endpoint."""

    def __init__(self, url: str, timeout: float = 60.0):
        parts = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16))
        self.sock.sendall(b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                          b"Sec-WebSocket-Version: 13\r\n\r\n"
                          % (parts.path.encode(), parts.hostname.encode(), parts.port, key))
        self.buffer = bytearray()
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        end = self.buffer.index(b"\r\n\r\n") + 4
        head, self.buffer = bytes(self.buffer[:end]), self.buffer[end:]
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        if b" 101 " not in head.split(b"\r\n")[0] or accept not in head:
            raise ConnectionError(f"WebSocket handshake refused: {head[:200]!r}")

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("DevTools connection closed")
        self.buffer += chunk

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._fill()
        data, self.buffer = bytes(self.buffer[:n]), self.buffer[n:]
        return data

    def _frame(self, opcode: int, payload: bytes) -> None:
        """Client frames must be masked (RFC 6455 section 5.3)."""
        n, mask = len(payload), os.urandom(4)
        length = (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
                  if n < 1 << 16 else bytes([0x80 | 127]) + struct.pack("!Q", n))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x80 | opcode]) + length + mask + masked)

    def send(self, text: str) -> None:
        self._frame(0x1, text.encode())

    def receive(self) -> str:
        message = b""
        while True:
            first, second = self._read(2)
            n = second & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(n)  # server frames are never masked
            opcode = first & 0x0F
            if opcode == 0x8:
                raise ConnectionError("DevTools connection closed by the browser")
            if opcode == 0x9:
                self._frame(0xA, payload)  # answer a ping
                continue
            message += payload
            if first & 0x80 and opcode in (0x0, 0x1, 0x2):
                return message.decode()

    def close(self) -> None:
        self.sock.close()


class Page:
    """One browser tab: DevTools commands, and the errors it reported."""

    def __init__(self, ws: WebSocket):
        self.ws, self.last_id, self.events = ws, 0, []

    def call(self, method: str, **params) -> dict:
        self.last_id += 1
        self.ws.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.receive())
            if message.get("id") == self.last_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {event} within {timeout} s")
            self.events.append(json.loads(self.ws.receive()))

    def open(self, path: Path) -> None:
        self.events.clear()
        self.call("Page.navigate", url=path.resolve().as_uri())
        self.wait_for("Page.loadEventFired")
        # Two animation frames: plotly has laid out and drawn everything queued at load.
        self.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click at the element's centre, as a reader would do it."""
        box = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                            "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
                            "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left",
                      clickCount=1)

    def errors(self) -> list[str]:
        """Uncaught exceptions, console.error calls and browser-logged errors so far."""
        found = []
        for e in self.events:
            params = e.get("params", {})
            if e.get("method") == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(details.get("exception", {}).get("description") or details["text"])
            elif e.get("method") == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                found.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif e.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(params["entry"]["text"])
        return found


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    log = (profile.parent / "chromium.log").open("w")
    browser = subprocess.Popen([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                "--remote-debugging-port=0", "--window-size=1400,1000", "about:blank"],
                               stdout=log, stderr=log)
    try:
        port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if browser.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Chromium did not start; see {log.name}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as response:
            target = next(t for t in json.load(response) if t["type"] == "page")
        ws = WebSocket(target["webSocketDebuggerUrl"])
        tab = Page(ws)
        for domain in ("Page", "Runtime", "Log"):
            tab.call(f"{domain}.enable")
        yield tab
        ws.close()
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
        log.close()


_SHOWN = """(ids => ids.map(id => { const e = document.getElementById(id);
  if (!e) return id + ": missing";
  const r = e.getBoundingClientRect(), s = getComputedStyle(e), h = e.querySelector(':scope > h2');
  return (r.width > 0 && r.height > 0 && s.visibility === 'visible' && s.display !== 'none'
          && h && h.getBoundingClientRect().height > 0) ? null : id + ": not visible";
}).filter(x => x))"""
_PLOTS = """Array.from(document.querySelectorAll('.plotly-graph-div')).map(p =>
  p.classList.contains('js-plotly-plot') && p.querySelector('svg.main-svg') !== null
  && p.querySelectorAll('g.trace, g.hm').length > 0)"""


def _check_page(page: Page, ids: tuple[str, ...], n_figures: int) -> None:
    assert page.errors() == []
    assert page.evaluate(f"{_SHOWN}({json.dumps(list(ids))})") == []
    drawn = page.evaluate(_PLOTS)
    assert len(drawn) == n_figures and all(drawn), drawn
    assert page.evaluate("document.querySelectorAll('.js-plotly-plot').length") == n_figures


def test_eda_report_renders_without_errors(page, transactions, tmp_path):
    path = tmp_path / "eda.html"
    path.write_text(eda_report(make_dataset(transactions)), encoding="utf-8")
    page.open(path)
    _check_page(page, EDA_IDS, 8)


def _column(page: Page, name: str) -> list[str]:
    return page.evaluate(f"""(() => {{ const t = document.querySelector('#leaderboard table');
      const i = Array.from(t.tHead.rows[0].cells).findIndex(c => c.textContent === {json.dumps(name)});
      return Array.from(t.tBodies[0].rows).map(r => r.cells[i].textContent); }})()""")


def test_study_report_renders_sorts_and_keeps_names_inert(page, transactions, tmp_path):
    runs, best = make_study(transactions, segment_name=HOSTILE)
    path = tmp_path / "study.html"
    path.write_text(study_report(runs, best, title=HOSTILE), encoding="utf-8")
    page.open(path)
    _check_page(page, STUDY_IDS, 5)
    assert page.evaluate("window.__pwned === undefined && document.images.length === 0")
    assert HOSTILE in page.evaluate("Array.from(document.querySelectorAll('#segments h3'))"
                                    ".map(h => h.textContent)")
    assert HOSTILE in page.evaluate("Array.from(document.querySelectorAll('#customer-map "
                                    ".legendtext')).map(t => t.textContent)")  # plotly: text too

    assert _column(page, "run name") == list(runs["run_name"])
    header = "#leaderboard th:nth-child({})".format(
        page.evaluate("Array.from(document.querySelectorAll('#leaderboard th'))"
                      ".findIndex(c => c.textContent === 'silhouette ↑')") + 1)
    page.click(header)
    ascending = runs.sort_values("cluster/silhouette", na_position="last", kind="stable")
    assert _column(page, "run name") == list(ascending["run_name"])
    assert page.evaluate(f"document.querySelector('{header}').getAttribute('aria-sort')") == "ascending"
    page.click(header)
    descending = runs.sort_values("cluster/silhouette", ascending=False, na_position="last",
                                  kind="stable")
    assert _column(page, "run name") == list(descending["run_name"])
    assert _column(page, "silhouette ↑")[-1] == "–"  # the run without a value stays last
    assert page.errors() == []


_PINNED = """(() => { const wrap = document.querySelector('#leaderboard .table-wrap');
  const pin = wrap.querySelector('tbody td.pin'), last = wrap.querySelector('tbody td:last-child');
  const before = pin.getBoundingClientRect().left;
  wrap.scrollLeft = wrap.scrollWidth;
  const after = pin.getBoundingClientRect().left, box = wrap.getBoundingClientRect();
  const r = last.getBoundingClientRect();
  return {scrolls: wrap.scrollWidth > wrap.clientWidth, moved: Math.abs(after - before),
          lastInView: r.right <= box.right + 1 && r.left >= box.left - 1}; })()"""


def test_wide_leaderboard_scrolls_with_the_run_name_pinned(page, transactions, tmp_path):
    runs, best = make_study(transactions)
    from segmentlab import vocabulary

    # Every report metric as a column: wider than the page.
    for i, key in enumerate(vocabulary.shown([m.key for m in vocabulary.METRICS], "report")):
        runs[key] = 0.1 * i
    path = tmp_path / "wide.html"
    path.write_text(study_report(runs, best), encoding="utf-8")
    page.open(path)
    state = page.evaluate(_PINNED)
    assert state == {"scrolls": True, "moved": 0, "lastInView": True}
    # The page itself does not scroll sideways: the table does.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_assignment_section_and_name_figures_are_shown(page, transactions, tmp_path):
    runs, best = make_study(transactions)
    path = tmp_path / "study.html"
    path.write_text(study_report(runs, best), encoding="utf-8")
    page.open(path)
    traces = page.evaluate("Array.from(document.querySelectorAll('#assignment .legendtext'))"
                           ".map(t => t.textContent)")
    assert traces == ["macro F1", "accuracy", "mean calibrated confidence",
                      "mean raw classifier probability", "minimum history to assign (120 days)"]
    visible = page.evaluate("Array.from(document.querySelectorAll('.segment .why li'))"
                            ".filter(li => li.getBoundingClientRect().height > 0).length")
    assert visible == sum(len([x for x in b.split(chr(10)) if x]) for b in best.profile["name_basis"])
    pushed = page.evaluate("Array.from(document.querySelectorAll('.segment dt'))"
                           ".filter(dt => dt.textContent === 'push' && dt.getBoundingClientRect().height > 0)"
                           ".map(dt => dt.nextElementSibling.textContent)")
    assert len(pushed) == len(best.profile) and all("(×" in text for text in pushed)
    assert page.errors() == []


def test_missing_inputs_render_cleanly(page, tmp_path):
    path = tmp_path / "empty.html"
    path.write_text(study_report(pd.DataFrame(), None), encoding="utf-8")
    page.open(path)
    assert page.errors() == []
    assert page.evaluate(f"{_SHOWN}({json.dumps(list(STUDY_IDS))})") == []
