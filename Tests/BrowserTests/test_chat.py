"""examples/chat in two real browser windows: a message posted in one arrives in the other,
through the browser client (/client/picloud.js) and Server-Sent Events."""
import unittest

from support import REPO, PiCloudServer, find, horizontal_overflow, make_driver, screenshot, wait_for

CHAT = REPO / "examples" / "chat"


class ChatTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = PiCloudServer(deploy=[CHAT]).start()
        try:
            cls.alice = make_driver()
            cls.bob = make_driver(phone=True)
        except BaseException:
            cls.server.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.alice.quit()
        cls.bob.quit()
        cls.server.stop()

    def open_chat(self, driver):
        driver.get(f"{self.server.base}/apps/chat/api/")
        wait_for(driver, lambda d: find(d, "#status").get_attribute("data-state") == "open", message="the page is live")

    def messages(self, driver):
        """The messages shown, as "author text"."""
        return driver.execute_script(
            "return [...document.querySelectorAll('#messages li')].map((li) => li.querySelector('.author').textContent + ' ' + li.lastChild.textContent)")

    def send(self, driver, author, text):
        name = find(driver, "form input[name=author]")
        name.clear()
        name.send_keys(author)
        find(driver, "form input[name=text]").send_keys(text)
        find(driver, "form button[type=submit]").click()

    def test_a_message_reaches_the_other_window(self):
        self.server.api("POST", "/apps/chat/api/messages", {"author": "Server", "text": "welcome"}, token=None)
        self.open_chat(self.alice)
        self.open_chat(self.bob)
        # Both show what was said before they opened the page.
        for driver in (self.alice, self.bob):
            wait_for(driver, lambda d: "Server welcome" in self.messages(d), message="the history")

        self.send(self.alice, "Alice", "Hello Bob")
        wait_for(self.bob, lambda d: "Alice Hello Bob" in self.messages(d), message="Alice's message in Bob's window")
        self.send(self.bob, "Bob", "Hi Alice")
        wait_for(self.alice, lambda d: "Bob Hi Alice" in self.messages(d), message="Bob's message in Alice's window")

        # Each message shows once, in the order sent, in both windows.
        expected = ["Server welcome", "Alice Hello Bob", "Bob Hi Alice"]
        for driver in (self.alice, self.bob):
            wait_for(driver, lambda d: self.messages(d) == expected, message=f"the same conversation in both windows: {self.messages(driver)}")
        self.assertFalse(horizontal_overflow(self.bob), "the page fits a phone's width")
        screenshot(self.alice, "chat-alice")
        screenshot(self.bob, "chat-bob-phone")


if __name__ == "__main__":
    unittest.main()
