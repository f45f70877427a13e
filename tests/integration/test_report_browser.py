"""The HTML run report in a real browser: headless Chromium (Debian's ``chromium``) renders the file, its DOM
after rendering still has the timeline and one bar per attempt, and its screenshot is a real page, not a blank
one, with the bars painted where the DOM puts them.

The screenshot is decoded with the stdlib alone (zlib, struct and the five PNG row filters), so the test needs
nothing but the browser. Without ``/usr/bin/chromium`` the tests skip and name ``make browser``; under
``make test`` (DRCTL_REQUIRE_LAB=1) they fail instead, so CI cannot pass by skipping them."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.report import html
from tests.unit.test_report_html import Page, sample_report

CHROMIUM = Path("/usr/bin/chromium")
MISSING = f"headless Chromium ({CHROMIUM}) is not installed: run `make browser` (python localstack/browser.py install)"
WIDTH, HEIGHT = 1400, 1000
TIMEOUT_S = 90
# Colours the page's stylesheet gives the timeline: a succeeded attempt's bar, a failed one's hatch stripes,
# and the first tier band (which spans the whole width of the SVG).
BAR_OK = (0x3C, 0x9D, 0x6D)
HATCH = {(0xE0, 0x52, 0x52), (0xFB, 0xD5, 0xD5)}
BAND_0 = (0xF8, 0xFA, 0xFC)
AXIS_H = 52  # the SVG y of the first tier band (html_timeline.AXIS_H)


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("DRCTL_REQUIRE_LAB") == "1":
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    return CHROMIUM


def run_chromium(browser: Path, profile: Path, *args: str) -> str:
    """Chromium's stdout; the whole process group is killed if it outlives ``TIMEOUT_S`` (it forks helpers)."""
    command = [
        str(browser),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
        *args,
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium took over {TIMEOUT_S}s: {' '.join(args)}")
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {err[-2000:]}"
    return out


# -- PNG, with the stdlib ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    channels: int
    rows: list[bytes]

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        i = x * self.channels
        row = self.rows[y]
        return row[i], row[i + 1], row[i + 2]


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def unfilter(kind: int, line: bytes, prev: bytes, bpp: int) -> bytes:
    """One scanline with its PNG filter undone (PNG spec, section 9)."""
    if kind == 0:
        return line
    if kind == 2:
        return bytes((x + b) & 0xFF for x, b in zip(line, prev, strict=True))
    out = bytearray(line)
    if kind == 1:
        for i in range(bpp, len(out)):
            out[i] = (out[i] + out[i - bpp]) & 0xFF
    elif kind == 3:
        for i in range(len(out)):
            left = out[i - bpp] if i >= bpp else 0
            out[i] = (out[i] + ((left + prev[i]) >> 1)) & 0xFF
    elif kind == 4:
        for i in range(len(out)):
            if i >= bpp:
                out[i] = (out[i] + _paeth(out[i - bpp], prev[i], prev[i - bpp])) & 0xFF
            else:
                out[i] = (out[i] + prev[i]) & 0xFF
    else:
        raise AssertionError(f"PNG filter type {kind} does not exist")
    return bytes(out)


def decode_png(data: bytes) -> Image:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8, f"bit depth {depth}"
    assert interlace == 0, "interlaced PNG"
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    assert channels >= 3, "greyscale screenshot"
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    assert len(raw) == height * (stride + 1), "truncated image data"
    rows: list[bytes] = []
    prev = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        prev = unfilter(raw[start], raw[start + 1 : start + 1 + stride], prev, channels)
        rows.append(prev)
    return Image(width, height, channels, rows)


def test_the_png_decoder_undoes_every_filter() -> None:
    """The decoder checked against itself: one 3x2 RGB image encoded with each filter type decodes the same."""
    pixels = [bytes([10, 200, 30, 250, 5, 128, 0, 255, 77]), bytes([90, 1, 2, 3, 4, 250, 255, 0, 128])]

    def encode(kind: int) -> bytes:
        lines, prev = [], bytes(9)
        for row in pixels:
            filtered = bytearray()
            for i, x in enumerate(row):
                a = row[i - 3] if i >= 3 else 0
                b, c = prev[i], prev[i - 3] if i >= 3 else 0
                pred = [0, a, b, (a + b) >> 1, _paeth(a, b, c)][kind]
                filtered.append((x - pred) & 0xFF)
            lines.append(bytes([kind]) + bytes(filtered))
            prev = row

        def chunk(name: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + name + body + struct.pack(">I", zlib.crc32(name + body))

        header = struct.pack(">IIBBBBB", 3, 2, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"".join(lines)))
            + chunk(b"IEND", b"")
        )

    for kind in range(5):
        assert decode_png(encode(kind)).rows == pixels, f"filter {kind}"


# -- the report in Chromium ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(html.render(sample_report()), encoding="utf-8")
    return path


def test_the_dom_after_rendering_has_the_timeline_and_its_bars(chromium: Path, page_file: Path, tmp_path: Path) -> None:
    dom = Page(run_chromium(chromium, tmp_path / "profile", "--dump-dom", page_file.as_uri()))
    assert [a for t, a in dom.elements if t == "svg" and a.get("id") == "timeline"]
    bars = [a for t, a in dom.elements if t == "rect" and "bar" in a.get("class", "").split()]
    report = sample_report()
    assert sorted((b["data-step"], b["data-attempt"]) for b in bars) == sorted(
        (s.step_id, str(a.number)) for s in report.steps for a in s.attempts
    )
    assert sum("failed" in b["class"].split() for b in bars) == 2
    assert not [t for t, _ in dom.elements if t in ("script", "img")]  # the hostile error stayed text
    seen = "".join(dom.text)
    assert '<script>alert("pwned")</script>' in seen
    assert "retried \u00d71" in seen
    assert "No cleanup records" not in seen
    assert "Cleanup" in seen


def test_the_screenshot_shows_the_page_with_bars_where_the_dom_puts_them(
    chromium: Path, page_file: Path, tmp_path: Path
) -> None:
    shot = tmp_path / "report.png"
    run_chromium(chromium, tmp_path / "profile", f"--screenshot={shot}", page_file.as_uri())
    image = decode_png(shot.read_bytes())
    assert (image.width, image.height) == (WIDTH, HEIGHT)

    colours: Counter[tuple[int, int, int]] = Counter(
        image.pixel(x, y) for y in range(0, HEIGHT, 2) for x in range(0, WIDTH, 2)
    )
    most = colours.most_common(1)[0][1]
    total = sum(colours.values())
    assert len(colours) > 100, f"only {len(colours)} colours: a blank or unstyled page"
    assert total - most > total * 0.15, "the page is almost all background"
    assert colours[(255, 255, 255)] > total * 0.2, "no white cards: the stylesheet did not apply"
    assert colours[BAR_OK] > 500, "no succeeded-attempt bar colour anywhere"

    # Find the SVG on screen by its first tier band (a full-width run of one colour), then check each bar the
    # DOM places inside the screenshot against the pixels at that spot.
    band_rows = [y for y in range(HEIGHT) if sum(1 for x in range(0, WIDTH, 4) if image.pixel(x, y) == BAND_0) > 200]
    assert band_rows, "the timeline's first tier band is not on screen"
    top = band_rows[0]
    left = next(x for x in range(WIDTH) if image.pixel(x, top + 1) == BAND_0)
    origin_y = top - AXIS_H
    page = Page(page_file.read_text(encoding="utf-8"))
    checked = 0
    for attrs in (a for t, a in page.elements if t == "rect" and "bar" in a.get("class", "").split()):
        x, y = left + float(attrs["x"]), origin_y + float(attrs["y"])
        w, h = float(attrs["width"]), float(attrs["height"])
        if y + h >= HEIGHT:
            continue
        cy = round(y + h / 2)
        samples = [image.pixel(round(x + w * f), cy) for f in (0.2, 0.35, 0.65, 0.8)]
        if "ok" in attrs["class"].split():
            hits = sum(p == BAR_OK for p in samples)
            assert hits >= 3, f"bar {attrs['data-step']}#{attrs['data-attempt']} at ({x:.0f},{cy}): {samples}"
        else:
            region = {image.pixel(round(x + i), round(y + j)) for i in range(1, int(w) - 1) for j in range(2, 12)}
            assert region & HATCH, f"failed bar {attrs['data-step']} is not hatched: {sorted(region)[:6]}"
        checked += 1
    assert checked == 7, f"{checked} of 7 bars were on screen"
