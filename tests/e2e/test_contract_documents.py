"""The contract documents in a real browser: Debian's chromium opens a facade's document as the
running platform serves it (``/services/<Facade>?doc``), takes a screenshot and prints it to
PDF. The screenshot is an image of the window's size, dark text on a light page under the
navigation bar; the PDF is A4 with each operation on a page of its own."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests import png

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 1280, 2000
FACADE = "LoanFacade"
#: Set by .ci/run, which installs chromium: there a missing browser fails instead of skipping.
REQUIRED = "P2P_TEST_REQUIRE_BROWSER"
NAVIGATION_BAR = (0xF3, 0xF5, 0xF8)
WHITE = (255, 255, 255)
A4 = (595, 842)  # points


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get(REQUIRED):
            pytest.fail(f"chromium is missing although {REQUIRED} is set (.ci/run installs it)")
        pytest.skip("needs a real browser: Debian's chromium (apt-get install chromium; CI has it)")
    return found


@pytest.fixture(scope="module")
def document(proxied_server) -> tuple[str, str]:
    """The document's URL and its HTML, as the platform serves it. A document is the same
    whatever the database: the session's one embedded server without a backend parameter
    shows it (the browser sends no forwarded headers, so its Host is the base URL)."""
    url = proxied_server.url(f"/services/{FACADE}?doc")
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    return url, response.text


def headless(chromium: str, workdir: Path, *options: str) -> None:
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",  # as root, as CI runs; the page is ours
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={workdir / 'profile'}",
            *options,
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]


def luminance(pixel: tuple[int, int, int]) -> float:
    r, g, b = pixel
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_the_screenshot_is_dark_text_on_a_light_page(chromium, document, tmp_path: Path) -> None:
    url, _ = document
    shot = tmp_path / "document.png"
    headless(
        chromium,
        tmp_path,
        "--hide-scrollbars",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--screenshot={shot}",
        url,
    )
    image = png.read(shot.read_bytes())
    assert (image.width, image.height) == (WIDTH, HEIGHT)
    pixels = Counter(image.pixel(x, y) for y in range(0, HEIGHT, 3) for x in range(0, WIDTH, 3))
    background, _ = pixels.most_common(1)[0]
    assert background == WHITE
    assert image.pixel(5, 5) == NAVIGATION_BAR  # the style sheet applies
    assert len(pixels) > 100, "too few colours for text: is the page blank?"
    ink = sum(n for pixel, n in pixels.items() if luminance(pixel) < 128) / pixels.total()
    assert 0.01 < ink < 0.3, f"{ink:.1%} of the page is dark"
    assert min(map(luminance, pixels)) < 60  # text is near black


def test_printed_each_operation_starts_a_page(chromium, document, tmp_path: Path) -> None:
    url, html = document
    pdf = tmp_path / "document.pdf"
    headless(chromium, tmp_path, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", url)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page\b(?!s)", data))
    operations = html.count('<section class="operation"')
    assert operations > 10
    # Contents and the rules, each operation, the structures, the error catalogue.
    assert pages >= operations + 3, (pages, operations)
    boxes = {
        tuple(round(float(v)) for v in box.split()[2:])
        for box in re.findall(rb"/MediaBox\s*\[\s*([0-9. ]+)\]", data)
    }
    assert boxes == {A4}, boxes
