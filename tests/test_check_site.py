"""The documentation's browser check finds what a reader would trip over."""

import importlib.util
import shutil
from pathlib import Path

import pytest

CHECK_SITE = Path(__file__).resolve().parents[1] / "docs" / "check_site.py"

pytestmark = [
    pytest.mark.skipif(
        shutil.which("chromedriver") is None,
        reason="needs chromium and chromium-driver (Debian packages)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("selenium") is None, reason="needs selenium"
    ),
]

# a 1x1 PNG
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


def _load():
    spec = importlib.util.spec_from_file_location("check_site", CHECK_SITE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _page(body):
    return (
        f"<!doctype html><html><head><title>t</title></head><body>{body}</body></html>"
    )


def _write_site(root, index_body, other_body):
    root.mkdir()
    (root / "pixel.png").write_bytes(PIXEL)
    (root / "index.html").write_text(_page(index_body))
    (root / "other.html").write_text(_page(other_body))


def test_a_sound_site_passes(tmp_path):
    site = tmp_path / "site"
    _write_site(
        site,
        '<a href="other.html#part">other</a><img src="pixel.png">',
        '<h1 id="part">Part</h1><a href="index.html">back</a>',
    )
    problems, pages = _load().check_site(site)
    assert problems == []
    assert pages == ["index.html", "other.html"]


def test_broken_links_images_anchors_and_script_errors_are_reported(tmp_path):
    site = tmp_path / "site"
    _write_site(
        site,
        '<a href="other.html">other</a><a href="gone.html">gone</a>'
        '<img src="missing.png"><script>undefinedFunction();</script>',
        '<a href="index.html#nowhere">back</a>',
    )
    problems, _ = _load().check_site(site)
    text = "\n".join(problems)
    assert "index.html: broken link to gone.html" in text
    assert "index.html: image does not load" in text and "missing.png" in text
    assert "undefinedFunction" in text
    assert "other.html: link to missing anchor index.html#nowhere" in text


def test_screenshots_are_written(tmp_path):
    site = tmp_path / "site"
    _write_site(site, '<a href="other.html">other</a>', "text")
    module = _load()
    module.SCREENSHOTS = {"front.png": "index.html"}
    problems, _ = module.check_site(site, tmp_path / "shots")
    assert problems == []
    assert (tmp_path / "shots" / "front.png").read_bytes()[:4] == b"\x89PNG"
