"""Support for the dashboard's browser tests: a private PiCloud server, headless Chromium, screenshots.

Python 3 standard library plus selenium (Debian's python3-selenium) driving /usr/bin/chromium
through /usr/bin/chromedriver.

Environment:
  PICLOUD_BINARY      the server binary (default .build/debug/picloud under the repository root)
  PICLOUD_ASSETS_DIR  passed through when set: the server then serves dashboard/ from that checkout
                      instead of the copy embedded in the binary (for working on the dashboard)
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

try:
    import selenium  # noqa: F401
except ImportError:  # a Python without Debian's packages on its path (pyenv): use them
    sys.path.append("/usr/lib/python3/dist-packages")

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
ARTIFACTS = HERE / "artifacts"
FIXTURES = HERE / "fixtures"
ADMIN_TOKEN = "pc_browsertest_" + secrets.token_hex(12)
CHROMIUM = os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
LAPTOP = (1280, 900)
PHONE = (390, 844)


class ApiError(Exception):
    def __init__(self, status: int, body):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class PiCloudServer:
    """`picloud serve` on a free port with a temporary data directory; a context manager."""

    def __init__(self, deploy: list[pathlib.Path | str] = (), env: dict[str, str] | None = None, token: str = ADMIN_TOKEN):
        self.deploy = [pathlib.Path(path) for path in deploy]
        self.extra_env = env or {}
        self.token = token
        self.process: subprocess.Popen | None = None
        self.data_dir: str | None = None
        self.port: int | None = None
        self.log: list[str] = []
        self._ready = threading.Event()

    @property
    def binary(self) -> pathlib.Path:
        path = pathlib.Path(os.environ.get("PICLOUD_BINARY", ".build/debug/picloud"))
        return path if path.is_absolute() else REPO / path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "PiCloudServer":
        if not self.binary.exists():
            raise RuntimeError(f"no server binary at {self.binary}: build it (swift build --product picloud) or set PICLOUD_BINARY")
        self.data_dir = tempfile.mkdtemp(prefix="picloud-browser-")
        env = {name: value for name, value in os.environ.items() if not name.startswith("PICLOUD_") or name == "PICLOUD_ASSETS_DIR"}
        env.update({"PICLOUD_ADMIN_TOKEN": self.token, "PICLOUD_LOG_LEVEL": "info"}, **self.extra_env)
        command = [str(self.binary), "serve", "--port", "0", "--data-dir", self.data_dir]
        for folder in self.deploy:
            command += ["--deploy", str(folder)]
        self.process = subprocess.Popen(command, cwd=self.data_dir, env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read_stderr, daemon=True).start()
        if not self._ready.wait(timeout) or self.port is None:
            self.stop()
            raise RuntimeError("picloud did not start:\n" + "".join(self.log[-40:]))
        return self

    def _read_stderr(self) -> None:
        assert self.process and self.process.stderr
        for line in self.process.stderr:
            self.log.append(line)
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if match and not self._ready.is_set():
                self.port = int(match.group(1))
                self._ready.set()
        self._ready.set()  # the process ended: stop waiting

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None

    def __enter__(self) -> "PiCloudServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # HTTP

    def request(self, method: str, path: str, body=None, token: str | None = "admin", headers: dict[str, str] | None = None):
        """Calls the server; returns (status, parsed JSON or text). `token="admin"` uses the admin key."""
        data = None
        all_headers = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode() if not isinstance(body, (bytes, str)) else (body.encode() if isinstance(body, str) else body)
            all_headers.setdefault("Content-Type", "application/json")
        if token:
            all_headers["Authorization"] = f"Bearer {self.token if token == 'admin' else token}"
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw, kind = response.status, response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            status, raw, kind = error.code, error.read(), error.headers.get("Content-Type", "")
        text = raw.decode("utf-8", "replace")
        return status, (json.loads(text) if "json" in kind and text else text)

    def api(self, method: str, path: str, body=None, token: str | None = "admin"):
        """Like request, but raises ApiError unless the answer is 2xx; returns the body."""
        status, answer = self.request(method, path, body, token)
        if status >= 300:
            raise ApiError(status, answer)
        return answer

    def deploy_folder(self, folder: pathlib.Path, app: str | None = None, replace: dict[str, str] | None = None):
        """Deploys a folder through the admin API (like `picloud deploy`), optionally with text replaced in the manifest."""
        manifest = (folder / "picloud.toml").read_text()
        for old, new in (replace or {}).items():
            manifest = manifest.replace(old, new)
        files = {str(path.relative_to(folder)): path.read_text() for path in folder.rglob("*.lua")}
        name = app or re.search(r'^name\s*=\s*"([^"]+)"', manifest, re.M).group(1)
        return self.api("PUT", f"/admin/apps/{name}/deployment", {"manifest": manifest, "files": files})

    def stale_dashboard_files(self) -> list[str]:
        """Dashboard files the server serves differently from the checkout (an old embedded copy)."""
        stale = []
        for path in sorted((REPO / "dashboard").rglob("*")):
            if path.is_file() and path.suffix in (".html", ".js", ".css", ".svg", ".json"):
                relative = path.relative_to(REPO / "dashboard").as_posix()
                status, served = self.request("GET", f"/dashboard/{relative}", token=None)
                if status != 200 or (served if isinstance(served, str) else json.dumps(served)).strip() != path.read_text().strip():
                    stale.append(relative)
        return stale


def require_current_dashboard(server: PiCloudServer) -> None:
    """Fails early, saying what to do, when the binary embeds an older dashboard than the checkout."""
    stale = server.stale_dashboard_files()
    if stale:
        raise RuntimeError(
            f"the server serves an outdated copy of dashboard/ ({', '.join(stale[:5])}{'…' if len(stale) > 5 else ''}): "
            "run `python3 scripts/embed-resources.py` and rebuild, or export PICLOUD_ASSETS_DIR=" + str(REPO))


# MARK: browser

def make_driver(phone: bool = False) -> webdriver.Chrome:
    """Headless Chromium: laptop size (1280x900), or a phone's viewport (390x844, touch, 2x)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--no-first-run", "--disable-extensions", "--lang=en-US", "--force-prefers-reduced-motion"):
        options.add_argument(argument)
    if phone:
        options.add_argument(f"--window-size={PHONE[0]},{PHONE[1]}")
        options.add_experimental_option("mobileEmulation", {
            "deviceMetrics": {"width": PHONE[0], "height": PHONE[1], "pixelRatio": 2, "touch": True},
            "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
        })
    else:
        options.add_argument(f"--window-size={LAPTOP[0]},{LAPTOP[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


def screenshot(driver: webdriver.Chrome, name: str) -> pathlib.Path:
    """Saves a PNG of the viewport under Tests/BrowserTests/artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / (name if name.endswith(".png") else f"{name}.png")
    driver.save_screenshot(str(path))
    return path


def wait_for(driver, condition, timeout: float = 15, message: str = ""):
    """Waits until `condition(driver)` is truthy (stale elements are retried); returns its value."""
    def check(d):
        try:
            return condition(d)
        except StaleElementReferenceException:
            return False
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(check)
    except TimeoutException as error:
        raise AssertionError(f"timed out after {timeout} s: {message or condition}") from error


def find(driver, css: str):
    return driver.find_element(By.CSS_SELECTOR, css)


def find_all(driver, css: str):
    return driver.find_elements(By.CSS_SELECTOR, css)


def text_of(driver, css: str) -> str:
    elements = find_all(driver, css)
    return elements[0].text if elements else ""


def sign_in(driver, server: PiCloudServer, key: str | None = None, hash: str = "#/apps") -> None:
    """Opens the dashboard, signs in with `key` (the admin key by default) and goes to `hash`."""
    driver.get(f"{server.base}/dashboard#/login")
    wait_for(driver, lambda d: find_all(d, "#login-key"), message="the sign-in form")
    field = find(driver, "#login-key")
    field.clear()
    field.send_keys(key or server.token)
    find(driver, "#login-submit").click()
    wait_for(driver, lambda d: not d.current_url.endswith("#/login"), message="leaving the sign-in page")
    go(driver, server, hash)


def go(driver, server: PiCloudServer, hash: str) -> None:
    """Moves to a route of the signed-in dashboard."""
    if not driver.current_url.startswith(f"{server.base}/dashboard"):
        driver.get(f"{server.base}/dashboard{hash}")
    else:
        driver.execute_script("location.hash = arguments[0]", hash)


def severe_console_messages(driver) -> list[str]:
    """Console errors since the last call (CSP violations, uncaught exceptions), minus failed requests the test provoked."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def horizontal_overflow(driver) -> int:
    """How many pixels the page is wider than the viewport (0 when it does not scroll sideways)."""
    return driver.execute_script(
        "return Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - document.documentElement.clientWidth")
