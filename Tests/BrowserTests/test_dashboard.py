"""The dashboard in a real browser (headless Chromium): signing in, deployments, topics, dead
letters, the live log tail, data browsing, metrics, permissions, and the phone layout."""
import secrets
import time
import unittest
import urllib.parse

from support import (FIXTURES, PiCloudServer, find, find_all, go, horizontal_overflow, make_driver,
                     require_current_dashboard, screenshot, sign_in, text_of, wait_for)
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

JOBS = FIXTURES / "jobs"


def topic_external(server, app, topic):
    return server.api("GET", f"/admin/apps/{app}/topics/{urllib.parse.quote(topic, safe='')}")["external_subscribable"]


class DashboardTests(unittest.TestCase):
    server: PiCloudServer

    @classmethod
    def setUpClass(cls):
        cls.server = PiCloudServer(deploy=[JOBS]).start()
        try:
            require_current_dashboard(cls.server)
            cls.driver = make_driver()
        except BaseException:
            cls.server.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.server.stop()

    def setUp(self):
        # Every test starts signed out, on a freshly loaded page (not a same-page hash change).
        self.driver.get("about:blank")
        self.driver.get(f"{self.server.base}/dashboard#/login")
        self.driver.execute_script("sessionStorage.clear()")
        self.driver.get_log("browser")  # forget earlier console messages
        self.expected_console = []

    def tearDown(self):
        # No Content-Security-Policy violation, no uncaught exception. Failed requests a test
        # provokes on purpose (401, 403) are listed in expected_console.
        problems = [entry["message"] for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]
        problems = [message for message in problems if not any(expected in message for expected in self.expected_console)]
        self.assertEqual([], problems, "console errors")

    # Helpers

    def sign_in(self, hash="#/apps", key=None):
        sign_in(self.driver, self.server, key=key, hash=hash)

    def call(self, path, **query):
        """Calls an endpoint of the jobs app."""
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        method = "GET" if path == "/hello" else "POST"
        return self.server.api(method, f"/apps/jobs/api{path}{suffix}", body={} if method == "POST" else None, token=None)

    def wait_dialog(self, open_=True):
        wait_for(self.driver, lambda d: d.execute_script("return document.getElementById('confirm-dialog').open") == open_,
                 message=f"the confirmation dialog to be {'open' if open_ else 'closed'}")

    # Tests

    def test_sign_in_refuses_a_wrong_key_and_signs_out(self):
        driver = self.driver
        driver.get(f"{self.server.base}/dashboard")
        wait_for(driver, lambda d: d.current_url.endswith("#/login"), message="the sign-in page")
        field = wait_for(driver, lambda d: find_all(d, "#login-key"))[0]
        self.assertEqual("Admin key", text_of(driver, "label[for='login-key']"))
        field.send_keys("pc_not_a_real_key_0000000000")
        find(driver, "#login-submit").click()
        error = wait_for(driver, lambda d: text_of(d, "#login-error"), message="the error for a wrong key")
        self.assertIn("not accepted", error)
        self.assertEqual("true", field.get_attribute("aria-invalid"))
        self.assertTrue(driver.current_url.endswith("#/login"))
        self.assertIsNone(driver.execute_script("return sessionStorage.getItem('picloud.adminKey')"))
        self.expected_console.append("401")

        field.clear()
        field.send_keys(self.server.token + Keys.ENTER)
        wait_for(driver, lambda d: any("jobs" in card.text for card in find_all(d, ".app-card")), message="the app list")
        self.assertEqual(self.server.token, driver.execute_script("return sessionStorage.getItem('picloud.adminKey')"))
        self.assertRegex(find(driver, ".app-card").text, r"Deployment\s+v\d+")

        find(driver, "#logout").click()
        wait_for(driver, lambda d: d.current_url.endswith("#/login") and find_all(d, "#login-key"), message="back to sign-in")
        self.assertIsNone(driver.execute_script("return sessionStorage.getItem('picloud.adminKey')"))
        self.assertFalse(find(driver, "#main-nav").is_displayed())

    def test_overview_shows_the_current_deployment_and_its_history(self):
        deployed = self.server.deploy_folder(JOBS, replace={"# A fixture": "# Deployed again by the overview test. A fixture"})
        version = deployed["version"]
        self.assertGreaterEqual(version, 2)
        self.sign_in("#/apps/jobs")
        wait_for(self.driver, lambda d: text_of(d, "#current-version") == f"v{version}", message=f"v{version} as the current deployment")
        wait_for(self.driver, lambda d: text_of(d, "#app-version") == f"v{version}", message="the version badge")
        rows = wait_for(self.driver, lambda d: [row.text for row in find_all(d, ".columns tr[data-key]")] or None, message="the history")
        self.assertGreaterEqual(len(rows), 2)
        self.assertTrue(rows[0].startswith(f"v{version}"), rows)
        self.assertTrue(rows[-1].startswith("v1"), rows)
        wait_for(self.driver, lambda d: not find_all(d, ".error-lines .skeleton-block"), message="the error list to load")
        screenshot(self.driver, "dashboard-overview")

    def test_topic_becomes_external_only_through_the_confirmation_dialog(self):
        driver = self.driver
        self.assertFalse(topic_external(self.server, "jobs", "alerts"))
        self.sign_in("#/apps/jobs/topics")
        card = "article[data-topic='alerts']"
        toggle = f"button[data-action='toggle-external'][data-topic='alerts']"
        wait_for(driver, lambda d: find_all(d, f"{card} .access-badge[data-state='internal']"), message="alerts shown internal")
        self.assertEqual("EXTERNAL", text_of(driver, "article[data-topic='status'] .access-badge").upper())

        # Cancelled with Escape: nothing changes, focus returns to the button.
        find(driver, toggle).click()
        self.wait_dialog(True)
        self.assertIn("alerts", text_of(driver, "#confirm-title"))
        self.assertEqual("confirm-cancel", driver.execute_script("return document.activeElement.id"))
        screenshot(driver, "dashboard-topic-dialog")
        driver.switch_to.active_element.send_keys(Keys.ESCAPE)
        self.wait_dialog(False)
        self.assertEqual("alerts", driver.execute_script("return document.activeElement.dataset.topic"))
        self.assertFalse(topic_external(self.server, "jobs", "alerts"))

        # Confirmed: the topic is external.
        find(driver, toggle).click()
        self.wait_dialog(True)
        self.assertEqual("Make external", text_of(driver, "#confirm-ok"))
        find(driver, "#confirm-ok").click()
        self.wait_dialog(False)
        wait_for(driver, lambda d: find_all(d, f"{card} .access-badge[data-state='external']"), message="alerts shown external")
        self.assertTrue(topic_external(self.server, "jobs", "alerts"))
        self.assertIn("now external", text_of(driver, "#notices"))
        screenshot(driver, "dashboard-topics")

        # And back.
        wait_for(driver, lambda d: find(d, toggle).text.startswith("Make internal"), message="the button to offer the way back")
        find(driver, toggle).click()
        self.wait_dialog(True)
        find(driver, "#confirm-ok").click()
        wait_for(driver, lambda d: find_all(d, f"{card} .access-badge[data-state='internal']"), message="alerts internal again")
        self.assertFalse(topic_external(self.server, "jobs", "alerts"))

    def test_dead_letters_are_purged_and_replayed(self):
        driver = self.driver
        self.sign_in("#/apps/jobs/deliveries")
        wait_for(driver, lambda d: find_all(d, "#dead-title"), message="the dead letters section")
        first = self.call("/jobs", name="first")["id"]
        second = self.call("/jobs", name="second")["id"]

        def letter_for(job):
            items = self.server.api("GET", "/admin/apps/jobs/dead-letters")["items"]
            return next((item["id"] for item in items if item["event"]["key"] == f"jobs/{job}"), None)
        purged = wait_for(driver, lambda d: letter_for(first), message="a dead letter for the first job")
        replayed = wait_for(driver, lambda d: letter_for(second), message="a dead letter for the second job")
        wait_for(driver, lambda d: find_all(d, f"tr[data-key='{purged}']") and find_all(d, f"tr[data-key='{replayed}']"),
                 timeout=20, message="both dead letters in the dashboard")
        self.assertIn("the job runner is broken", find(driver, f"tr[data-key='{replayed}']").text)

        # Filtering by trigger keeps them (it is their trigger) and goes into the address.
        trigger = self.server.api("GET", "/admin/apps/jobs/triggers")["items"][0]["id"]
        Select(find(driver, "#filter-trigger")).select_by_value(trigger)
        wait_for(driver, lambda d: f"trigger={trigger}" in d.current_url, message="the filter in the address")
        wait_for(driver, lambda d: find_all(d, f"tr[data-key='{replayed}']"), message="the filtered list")
        self.assertEqual("Purge matching…", find(driver, "#purge-matching").text)
        screenshot(driver, "dashboard-dead-letters")

        # Purge one, after confirming.
        find(driver, f"button[data-action='purge'][data-id='{purged}']").click()
        self.wait_dialog(True)
        self.assertIn(purged, text_of(driver, "#confirm-title"))
        find(driver, "#confirm-ok").click()
        wait_for(driver, lambda d: not find_all(d, f"tr[data-key='{purged}']"), message="the purged row to go")
        status, _ = self.server.request("GET", f"/admin/apps/jobs/dead-letters/{purged}")
        self.assertEqual(404, status)

        # Fix the handler, then replay: the event goes through the outbox to the handler again.
        self.call("/fix")
        find(driver, f"button[data-action='replay'][data-id='{replayed}']").click()
        wait_for(driver, lambda d: not find_all(d, f"tr[data-key='{replayed}']"), message="the replayed row to go")
        self.assertIn("back in the outbox", text_of(driver, "#notices"))
        self.assertNotIn(replayed, [item["id"] for item in self.server.api("GET", "/admin/apps/jobs/dead-letters")["items"]])
        wait_for(driver, lambda d: self.server.api("GET", "/admin/apps/jobs/kv?prefix=done/")["items"], message="the replayed job to run")
        done = [item["key"] for item in self.server.api("GET", "/admin/apps/jobs/kv?prefix=done/")["items"]]
        self.assertEqual([f"done/{second}"], done)
        self.assertEqual(driver.execute_script("return document.activeElement.id"), "dead-title",
                         "focus moves to the section when the last row goes")

    def test_live_log_tail_follows_new_lines_and_pauses_when_scrolled_up(self):
        driver = self.driver
        for index in range(60):
            self.call("/hello", name=f"before-{index}")
        self.sign_in("#/apps/jobs/logs")
        wait_for(driver, lambda d: find(d, "#log-state").get_attribute("data-state") == "live", message="the stream to be live")
        wait_for(driver, lambda d: "hello before-59" in text_of(d, "#log-lines"), message="the backlog")

        def at_bottom(d):
            return d.execute_script("const l = document.getElementById('log-lines'); return l.scrollHeight - l.scrollTop - l.clientHeight < 24")
        self.assertTrue(driver.execute_script("const l = document.getElementById('log-lines'); return l.scrollHeight > l.clientHeight"))
        wait_for(driver, at_bottom, message="following the end")

        marker = f"tail-{secrets.token_hex(4)}"
        self.call("/hello", name=marker)
        wait_for(driver, lambda d: f"hello {marker}" in text_of(d, "#log-lines"), message="the new line in the tail")
        line = [element for element in find_all(driver, ".log-line") if f"hello {marker}" in element.text][0]
        self.assertIn("INFO", line.text)
        wait_for(driver, at_bottom, message="scrolled to the new line")

        # Scrolled up: following pauses, new lines are counted.
        driver.execute_script("document.getElementById('log-lines').scrollTop = 0")
        wait_for(driver, lambda d: find(d, "#log-jump").is_displayed(), message="the jump button")
        self.call("/hello", name=f"{marker}-while-paused")
        wait_for(driver, lambda d: f"hello {marker}-while-paused" in d.execute_script("return document.getElementById('log-lines').textContent"),
                 message="the line that came while paused")
        self.assertEqual(0, driver.execute_script("return document.getElementById('log-lines').scrollTop"))
        self.assertIn("1 new line", find(driver, "#log-jump").text)
        find(driver, "#log-jump").click()
        wait_for(driver, at_bottom, message="back at the end")
        self.assertFalse(find(driver, "#log-jump").is_displayed())

        # Level filter: warn and above.
        Select(find(driver, "#log-level")).select_by_value("warn")
        wait_for(driver, lambda d: find(d, "#log-state").get_attribute("data-state") == "live" and "hello before" not in text_of(d, "#log-lines"),
                 message="the tail restarted at warn")
        self.call("/hello", name=f"{marker}-info")
        self.call("/hello", name=f"{marker}-warn", level="warn")
        wait_for(driver, lambda d: f"hello {marker}-warn" in text_of(d, "#log-lines"), message="the warn line")
        self.assertNotIn(f"hello {marker}-info", text_of(driver, "#log-lines"))
        self.assertIn("level=warn", driver.current_url)
        screenshot(driver, "dashboard-logs")

    def test_kv_browser_pages(self):
        for index in range(30):
            self.server.api("PUT", f"/admin/apps/jobs/kv/page-test/{index:02d}", {"n": index})
        driver = self.driver
        self.sign_in("#/apps/jobs/data/kv?prefix=page-test/")
        wait_for(driver, lambda d: len(find_all(d, "tr[data-key]")) == 25, message="the first page")
        self.assertEqual("page-test/", find(driver, "#kv-prefix").get_attribute("value"))
        self.assertEqual("page-test/00", find(driver, "tr[data-key]").get_attribute("data-key"))
        nxt = [button for button in find_all(driver, "nav.pager button") if "Next" in button.text][0]
        nxt.click()
        wait_for(driver, lambda d: len(find_all(d, "tr[data-key]")) == 5, message="the second page")
        self.assertEqual("page-test/25", find(driver, "tr[data-key]").get_attribute("data-key"))
        self.assertEqual("Page 2", text_of(driver, ".pager-status"))
        self.assertIsNotNone(nxt.get_attribute("disabled"))
        prev = [button for button in find_all(driver, "nav.pager button") if "Previous" in button.text][0]
        prev.click()
        wait_for(driver, lambda d: len(find_all(d, "tr[data-key]")) == 25, message="the first page again")

    def test_metrics_show_invocations_errors_p99_and_subscribers(self):
        driver = self.driver
        self.call("/hello")
        self.sign_in("#/metrics")
        wait_for(driver, lambda d: text_of(d, "#metric-requests").replace(",", "").isdigit(), message="the invocation count")
        before = int(text_of(driver, "#metric-requests").replace(",", ""))
        for _ in range(5):
            self.call("/hello")
        wait_for(driver, lambda d: int(text_of(d, "#metric-requests").replace(",", "") or 0) >= before + 5, timeout=15, message="the count to grow")
        self.assertRegex(text_of(driver, "#metric-p99"), r"(µs|ms|s)$")
        self.assertRegex(text_of(driver, "#metric-errors"), r"^\d")
        self.assertRegex(text_of(driver, "#metric-subscribers"), r"^\d+$")
        # The p99 estimate follows PromQL's histogram_quantile.
        results = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            import('/dashboard/metrics.js').then((m) => {
              const text = 'x_bucket{le="0.01"} 0\\nx_bucket{le="0.1"} 100\\nx_bucket{le="+Inf"} 100\\nx_count 100\\n';
              const b = m.buckets(m.parsePrometheus(text), 'x');
              const over = [{ le: 0.1, count: 10 }, { le: Infinity, count: 100 }];
              done([m.quantile(0.99, b).value, m.quantile(0.5, b).value, m.quantile(0.99, over).aboveLargestBucket, m.quantile(0.99, [{ le: Infinity, count: 0 }])]);
            }, (e) => done(String(e)));
        """)
        self.assertAlmostEqual(0.0991, results[0], places=6)
        self.assertAlmostEqual(0.055, results[1], places=6)
        self.assertTrue(results[2])
        self.assertIsNone(results[3])

    def test_missing_scope_is_named_and_a_revoked_key_signs_out(self):
        driver = self.driver
        created = self.server.api("POST", "/admin/apps/jobs/keys", {"scopes": ["data:read"], "name": "browser-test"})
        self.sign_in("#/apps/jobs/topics", key=created["key"])
        panel = wait_for(driver, lambda d: find_all(d, ".error-panel"), message="the permission error")[0]
        self.assertEqual("alert", panel.get_attribute("role"))
        self.assertIn("app:read", panel.text)
        self.expected_console.append("403")
        go(driver, self.server, "#/apps/jobs/data/kv")
        wait_for(driver, lambda d: find_all(d, "#kv-prefix") and not find_all(d, ".skeleton-row"), message="kv browsing allowed")
        self.assertFalse(find_all(driver, ".error-panel"))

        self.server.api("DELETE", f"/admin/apps/jobs/keys/{created['id']}")
        go(driver, self.server, "#/apps/jobs/data/files")
        wait_for(driver, lambda d: d.current_url.endswith("#/login") and find_all(d, "#login-key"), message="signed out")
        self.assertIn("Signed out", text_of(driver, "#alerts"))
        self.assertIsNone(driver.execute_script("return sessionStorage.getItem('picloud.adminKey')"))
        self.expected_console.append("401")

    def test_every_control_is_labelled_and_the_page_has_landmarks(self):
        driver = self.driver
        self.sign_in("#/apps")
        unlabelled_script = """
            const name = (el) => (el.getAttribute('aria-label') || (el.labels && [...el.labels].map((l) => l.textContent).join(' ')) ||
              (el.getAttribute('aria-labelledby') || '').split(' ').map((id) => document.getElementById(id)?.textContent || '').join(' ') ||
              (el.matches('button, a') ? el.textContent : '')).trim();
            return [...document.querySelectorAll('input, select, textarea, button, a[href]')]
              .filter((el) => el.getClientRects().length > 0 && !name(el))
              .map((el) => el.outerHTML.slice(0, 120));
        """
        for hash in ["#/apps", "#/apps/jobs", "#/apps/jobs/endpoints", "#/apps/jobs/triggers", "#/apps/jobs/topics",
                     "#/apps/jobs/deliveries", "#/apps/jobs/logs", "#/apps/jobs/data/kv", "#/apps/jobs/data/docs",
                     "#/apps/jobs/data/files", "#/metrics"]:
            go(driver, self.server, hash)
            wait_for(driver, lambda d: find_all(d, "#view h1") and not find_all(d, ".skeleton-row, .skeleton-block, .stat-skeleton"),
                     message=f"{hash} to load")
            self.assertEqual([], driver.execute_script(unlabelled_script), f"unlabelled controls on {hash}")
            self.assertEqual(1, len(find_all(driver, "main#main")), hash)
            self.assertTrue(find_all(driver, "header.topbar nav[aria-label='Main']"), hash)
            self.assertEqual(1, len(find_all(driver, "#view h1")), f"one h1 on {hash}")
        # Moving between sections puts focus on the section's heading.
        go(driver, self.server, "#/apps/jobs")
        wait_for(driver, lambda d: find_all(d, "nav.tabs a[data-section='topics']"), message="the section links")
        find(driver, "nav.tabs a[data-section='topics']").click()
        wait_for(driver, lambda d: d.execute_script("return document.activeElement.id") == "section-title", message="focus on the heading")
        self.assertEqual("Topics", driver.switch_to.active_element.text)

    def test_phone_layout_does_not_scroll_sideways(self):
        self.server.api("PUT", "/admin/apps/jobs/kv/a-rather-long-key/" + "x" * 80, {"text": "y" * 400})
        self.call("/jobs", name="phone")
        phone = make_driver(phone=True)
        try:
            sign_in(phone, self.server)
            self.assertEqual(390, phone.execute_script("return window.innerWidth"))
            for hash in ["#/apps", "#/apps/jobs", "#/apps/jobs/endpoints", "#/apps/jobs/triggers", "#/apps/jobs/topics",
                         "#/apps/jobs/deliveries", "#/apps/jobs/logs", "#/apps/jobs/data/kv", "#/apps/jobs/data/docs", "#/metrics"]:
                go(phone, self.server, hash)
                wait_for(phone, lambda d: find_all(d, "#view h1") and not find_all(d, ".skeleton-row, .skeleton-block, .stat-skeleton"),
                         message=f"{hash} to load")
                if hash == "#/apps/jobs":
                    screenshot(phone, "dashboard-phone-overview")
                if hash == "#/apps/jobs/topics":
                    screenshot(phone, "dashboard-phone-topics")
                self.assertEqual(0, horizontal_overflow(phone), f"{hash} scrolls sideways")
            self.assertEqual([], [e["message"] for e in phone.get_log("browser") if e["level"] == "SEVERE"])
        finally:
            phone.quit()


if __name__ == "__main__":
    unittest.main()
