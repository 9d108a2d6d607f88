#!/usr/bin/env python3
"""Runs the dashboard's browser tests: every test_*.py in this folder, with unittest.

    python3 Tests/BrowserTests/run.py            # from the repository root
    PICLOUD_ASSETS_DIR=$PWD python3 Tests/BrowserTests/run.py   # against the checkout's dashboard/

The last line of output is exactly "N passed, N failed"; the exit status is 1 on any failure or error.
"""
import os
import pathlib
import sys
import unittest

HERE = pathlib.Path(__file__).resolve().parent

try:
    import selenium  # noqa: F401
except ImportError:
    # selenium comes from Debian's python3-selenium: run under the system Python if this one lacks it.
    system = "/usr/bin/python3"
    if os.path.realpath(sys.executable) != os.path.realpath(system) and os.path.exists(system) and not os.environ.get("PICLOUD_BROWSER_TESTS_REEXEC"):
        os.environ["PICLOUD_BROWSER_TESTS_REEXEC"] = "1"
        os.execv(system, [system, __file__, *sys.argv[1:]])


def main() -> int:
    sys.path.insert(0, str(HERE))
    loader = unittest.TestLoader()
    suite = loader.discover(start_dir=str(HERE), pattern="test_*.py", top_level_dir=str(HERE))
    if len(sys.argv) > 1:  # run only tests whose id contains one of the arguments
        wanted = sys.argv[1:]

        def flatten(item):
            if isinstance(item, unittest.TestSuite):
                for child in item:
                    yield from flatten(child)
            else:
                yield item
        suite = unittest.TestSuite(test for test in flatten(suite) if any(word in test.id() for word in wanted))
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    problems = result.failures + result.errors
    failed = len(problems) + len(result.unexpectedSuccesses)
    # Errors in setUpClass and the like are not tests that ran: count them as failed, not against passed.
    ran_and_failed = sum(1 for test, _ in problems if isinstance(test, unittest.TestCase)) + len(result.unexpectedSuccesses)
    passed = max(0, result.testsRun - ran_and_failed - len(result.skipped))
    sys.stdout.flush()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or result.testsRun == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
