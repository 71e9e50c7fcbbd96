"""A real headless browser for the end-to-end tests: Debian's chromium, driven
over the Chrome DevTools protocol with python3-websocket (both Debian
packages; scripts/deps installs them). No npm, no downloaded browser build.

    with Browser(tmp_path) as b:
        b.goto("http://127.0.0.1:9901/")
        b.wait_js("document.title === 'sluice'")
        b.screenshot(path)
        assert b.console_errors() == []

Everything the page logs as an error (console.error, an uncaught exception,
a failed load, a CSP violation) is collected from the moment the page opens.
"""

import base64
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import requests
import websocket

CHROMIUM = os.environ.get("SLUICE_CHROMIUM", "/usr/bin/chromium")


class BrowserError(Exception):
    pass


class Browser:
    def __init__(self, tmp_path, width=1400, height=1000):
        if not os.access(CHROMIUM, os.X_OK):
            raise BrowserError(f"{CHROMIUM} is missing: install the Debian package chromium "
                               "(scripts/deps does)")
        self.dir = Path(tmp_path) / "chromium"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "chromium.log"
        args = [CHROMIUM, "--headless=new", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-features=Translate,MediaRouter",
                f"--user-data-dir={self.dir / 'profile'}", "--remote-debugging-port=0",
                f"--window-size={width},{height}", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # chromium refuses to run as root otherwise
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        self.ws = None
        self.events = []
        self.responses = {}
        self.cond = threading.Condition()
        self.next_id = 0
        try:
            self._connect()
        except Exception:
            self.close()
            raise

    # -- the protocol -------------------------------------------------------------

    def _connect(self):
        active = self.dir / "profile" / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (active.exists() and active.read_text().count("\n") >= 1):
            if self.proc.poll() is not None:
                raise BrowserError(f"chromium exited with {self.proc.returncode}:\n"
                                   + self.log_path.read_text(errors="replace")[-3000:])
            if time.monotonic() > deadline:
                raise BrowserError("chromium did not open its DevTools port")
            time.sleep(0.05)
        port = int(active.read_text().split("\n")[0])
        pages = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(p for p in pages if p["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30,
                                              suppress_origin=True)
        threading.Thread(target=self._read, daemon=True).start()
        for domain in ("Runtime", "Log", "Page", "Performance"):
            self.call(domain + ".enable")

    def _read(self):
        while True:
            try:
                msg = json.loads(self.ws.recv())
            except Exception:
                with self.cond:
                    self.responses[None] = "closed"
                    self.cond.notify_all()
                return
            with self.cond:
                if "id" in msg:
                    self.responses[msg["id"]] = msg
                else:
                    self.events.append(msg)
                self.cond.notify_all()

    def call(self, method, timeout=30, **params):
        with self.cond:
            self.next_id += 1
            i = self.next_id
        self.ws.send(json.dumps({"id": i, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        with self.cond:
            while i not in self.responses:
                if None in self.responses:
                    raise BrowserError(f"{method}: the DevTools connection closed")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrowserError(f"{method}: no answer in {timeout} s")
                self.cond.wait(left)
            msg = self.responses.pop(i)
        if "error" in msg:
            raise BrowserError(f"{method}: {msg['error']}")
        return msg.get("result", {})

    # -- what tests use -----------------------------------------------------------

    def js(self, expression):
        """The value of a JavaScript expression in the page (awaited if a promise)."""
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise BrowserError(f"{expression}: {d.get('exception', {}).get('description') or d}")
        return r["result"].get("value")

    def wait_js(self, expression, timeout=10.0, what=None):
        """Poll until the expression is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.js(expression)
            if v:
                return v
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what or expression}")
            time.sleep(0.05)

    def perf(self):
        """The browser's counters for the page (Performance.getMetrics): seconds
        spent in tasks, script, layout, style... since it opened."""
        return {m["name"]: m["value"] for m in self.call("Performance.getMetrics")["metrics"]}

    def goto(self, url):
        self.call("Page.navigate", url=url)
        self.wait_js("document.readyState === 'complete' && location.href !== 'about:blank'",
                     what=f"{url} to load")

    def reload(self):
        self.call("Page.reload")
        time.sleep(0.1)
        self.wait_js("document.readyState === 'complete'", what="the page to load again")

    def screenshot(self, path, full_page=True, max_height=6000):
        """Save a PNG of the page (whole, up to max_height CSS pixels)."""
        params = {"format": "png"}
        if full_page:
            m = self.call("Page.getLayoutMetrics")
            size = m.get("cssContentSize") or m["contentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"],
                                "height": min(size["height"], max_height), "scale": 1})
        data = self.call("Page.captureScreenshot", timeout=60, **params)["data"]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def console_errors(self):
        """Every error the page logged so far, as text."""
        out = []
        with self.cond:
            events = list(self.events)
        for e in events:
            p = e.get("params", {})
            if e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value", a.get("description", "")))
                                                  for a in p.get("args", [])))
            elif e["method"] == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append("exception: " + (d.get("exception", {}).get("description")
                                            or d.get("text", "")))
            elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                entry = p["entry"]
                out.append(f"log ({entry.get('source')}): {entry.get('text')} "
                           f"{entry.get('url', '')}")
        return out

    def close(self):
        if self.ws is not None:
            try:
                self.call("Browser.close", timeout=5)
            except Exception:
                pass
            try:
                self.ws.close()
            except Exception:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        # Our own session (start_new_session): the browser and the helper
        # processes it started, should any outlive it.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
