#!/usr/bin/env python3
"""Drives the real page in headless Chromium (Playwright, the system's /usr/bin/chromium) through nginx over TLS.

Usage: Tests/Browser/page_check.py BASE_URL CA_CERT

Prints one `name=value` line per observation; Tests/EndToEnd/test_40_browser.sh asserts on them. Exits 2 when
the browser cannot be driven at all.
"""
import sys
import time

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    print("error=playwright is not installed (scripts/lib.sh ensure_browser)")
    sys.exit(2)


def main(base, _ca, observations):
    with sync_playwright() as p:
        # The certificate is the run's self-signed one; TLS itself is checked by the curl tests.
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(ignore_https_errors=True)
        errors = []
        # Chromium logs every 4xx answer as a console error; the empty-query 400 is intended, so only other errors
        # (script errors, CSP refusals, 5xx) count.
        page.on("console", lambda m: errors.append(m.text)
                if m.type == "error" and "the server responded with a status of 4" not in m.text else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(base + "/")
        observations["title"] = page.title()

        # Empty query: the message shows, the text stays.
        page.fill("#query", "   ")
        page.click("button[type=submit]")
        page.wait_for_selector("#result .message-error", timeout=10000)
        observations["empty_message"] = page.inner_text("#result .message-error")

        # A streamed answer: text grows while the task runs, then the result replaces it.
        prompt = "browser stream [mock:latency=5] [mock:long=40]"
        page.fill("#query", prompt)
        page.click("button[type=submit]")
        page.wait_for_selector(".task-pending .partial:not(:empty)", timeout=10000)
        observations["form_reset"] = page.input_value("#query") == ""
        first = page.inner_text(".task-pending .partial")
        time.sleep(1.0)
        node = page.query_selector(".task-pending .partial")
        second = node.inner_text() if node else ""
        observations["partial_grows"] = len(second) > len(first) > 0
        page.wait_for_selector(".task-succeeded", timeout=30000)
        observations["result"] = page.inner_text(".task-succeeded .result-text")
        observations["stream_requests"] = sum("/stream?" in u for u in requests)
        observations["check_requests"] = sum("/check?" in u for u in requests)

        # Model output with markup is text.
        page.fill("#query", "browser html [mock:html]")
        page.click("button[type=submit]")
        # (wait_for_function would evaluate a string, which the page's CSP rightly forbids: poll from here.)
        deadline = time.time() + 30
        while time.time() < deadline:
            node = page.query_selector(".task-succeeded .result-text")
            if node and "xss" in node.inner_text():
                break
            time.sleep(0.2)
        observations["html_as_text"] = "<script>" in page.inner_text(".task-succeeded .result-text")
        observations["injected_elements"] = page.evaluate(
            "document.querySelectorAll('#result script, #result img, #result a[href^=javascript]').length")

        # Cancel while it streams.
        page.fill("#query", "browser cancel [mock:latency=30] [mock:long=100]")
        page.click("button[type=submit]")
        page.wait_for_selector(".task-pending .partial:not(:empty)", timeout=10000)
        page.click(".task-pending form.cancel button")
        page.wait_for_selector(".task-cancelled", timeout=10000)
        observations["cancelled"] = True
        observations["errors"] = len(errors)
        observations["error_text"] = " | ".join(errors)[:300]
        browser.close()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[2])
        sys.exit(0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 64)
    found = {}
    status = 0
    try:
        main(sys.argv[1], sys.argv[2], found)
    except Exception as error:  # a timeout or a missing browser: report it, the shell test fails
        found["error"] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        status = 2
    for key, value in found.items():
        print(f"{key}={str(value).replace(chr(10), ' ')}")
    sys.exit(status)
