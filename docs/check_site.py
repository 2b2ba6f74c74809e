"""Check the built documentation as a reader would: in a real browser.

Serves the built HTML on 127.0.0.1, opens every page reachable from the front page
in headless Chromium (driven by selenium), and fails when

- an internal link points to a file that is not there, or to an anchor that is not
  on its page,
- an image does not load,
- the browser's console reports an error (a JavaScript exception, a missing script,
  style sheet or font).

It saves screenshots of the front page, the estimator's API page and one gallery
example. Usage::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
    python docs/check_site.py docs/_build/html --screenshots docs/_build/screenshots

Needs Debian's ``chromium`` and ``chromium-driver`` packages (or any Chrome with a
matching chromedriver on the PATH) and selenium (the ``[docs]`` extra).
"""

import argparse
import functools
import http.server
import shutil
import sys
import threading
import urllib.parse
from collections import deque
from pathlib import Path

SCREENSHOTS = {
    "front.png": "index.html",
    "estimator_api.png": "generated/sk_convae.ConvAutoEncoderTransformer.html",
    "gallery_example.png": "auto_examples/plot_quickstart.html",
}

# Pages that are files to download or Sphinx's own copies of sources: checked to
# exist when linked, never opened as pages.
NOT_PAGES = ("_sources/", "_downloads/", "_images/", "_static/")

# Internal URLs the theme links to that Sphinx does not write (none so far).
KNOWN_ABSENT = ()

# Requests the browser makes of its own accord, not the page: a site without a
# favicon.ico is not broken.
BROWSER_OWN = ("/favicon.ico ",)


def serve(root):
    """Serve ``root`` on a free port of 127.0.0.1 in a daemon thread."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def make_driver(width=1280, height=1000):
    """Headless Chromium with its console log readable."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    for name in ("chromium", "chromium-browser", "google-chrome"):
        binary = shutil.which(name)
        if binary:
            options.binary_location = binary
            break
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_path = shutil.which("chromedriver")
    service = Service(driver_path) if driver_path else Service()
    return webdriver.Chrome(options=options, service=service)


# One round trip per page: what the page links to, which images failed, its ids.
PAGE_FACTS = """
return {
  links: Array.from(document.querySelectorAll('a[href]'), a => a.href),
  broken_images: Array.from(document.images)
    .filter(img => !(img.complete && img.naturalWidth > 0))
    .map(img => img.currentSrc || img.src),
  ids: Array.from(document.querySelectorAll('[id]'), e => e.id)
    .concat(Array.from(document.querySelectorAll('a[name]'), e => e.name)),
  title: document.title,
};
"""


def check_site(root, screenshots=None):
    """Visit every page of the site in ``root``; return a list of problems."""
    root = Path(root)
    if not (root / "index.html").is_file():
        raise SystemExit(f"{root} has no index.html: build the site first.")
    server = serve(root)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    driver = make_driver()
    problems, ids_of, wanted_anchors = [], {}, []
    queue, seen = deque(["index.html"]), {"index.html"}
    try:
        while queue:
            page = queue.popleft()
            driver.get(base + page)
            facts = driver.execute_script(PAGE_FACTS)
            ids_of[page] = set(facts["ids"])
            for entry in driver.get_log("browser"):
                own = any(name in entry["message"] for name in BROWSER_OWN)
                if entry["level"] == "SEVERE" and not own:
                    problems.append(f"{page}: console error: {entry['message']}")
            for src in facts["broken_images"]:
                problems.append(f"{page}: image does not load: {src}")
            for href in facts["links"]:
                url = urllib.parse.urlsplit(href)
                if not href.startswith(base) or url.scheme not in ("http", "https"):
                    continue  # external, mailto:, javascript:
                path = urllib.parse.unquote(url.path[len("/") :]) or "index.html"
                if path.endswith("/"):
                    path += "index.html"
                if path in KNOWN_ABSENT:
                    continue
                if not (root / path).is_file():
                    problems.append(f"{page}: broken link to {path}")
                    continue
                if url.fragment and path.endswith(".html"):
                    wanted_anchors.append((page, path, url.fragment))
                if (
                    path.endswith(".html")
                    and not path.startswith(NOT_PAGES)
                    and path not in seen
                ):
                    seen.add(path)
                    queue.append(path)
        for name, page in SCREENSHOTS.items() if screenshots else ():
            if not (root / page).is_file():
                problems.append(f"screenshot: {page} is not in the site")
                continue
            Path(screenshots).mkdir(parents=True, exist_ok=True)
            driver.get(base + page)
            driver.save_screenshot(str(Path(screenshots) / name))
    finally:
        driver.quit()
        server.shutdown()
    for page, path, fragment in wanted_anchors:
        anchors = ids_of.get(path)
        if anchors is not None and urllib.parse.unquote(fragment) not in anchors:
            problems.append(f"{page}: link to missing anchor {path}#{fragment}")
    return sorted(set(problems)), sorted(seen)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", nargs="?", default="docs/_build/html")
    parser.add_argument(
        "--screenshots", default=None, help="folder for the screenshots (optional)"
    )
    args = parser.parse_args(argv)
    problems, pages = check_site(args.site, args.screenshots)
    print(f"visited {len(pages)} pages in headless Chromium")
    for problem in problems:
        print("  " + problem)
    if problems:
        print(f"{len(problems)} problems")
        return 1
    print("no broken links, missing images or console errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
