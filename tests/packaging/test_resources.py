"""The desktop entry, the AppStream metainfo and the icons, checked as a desktop would."""

from __future__ import annotations

import configparser
import struct
import subprocess
import xml.etree.ElementTree as ET

from tests.packaging.conftest import APP_ID, RESOURCES, require_tool

DESKTOP_FILE = RESOURCES / f"{APP_ID}.desktop"
METAINFO = RESOURCES / f"{APP_ID}.metainfo.xml"
PNG_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def _desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(DESKTOP_FILE.read_text(encoding="utf-8"))
    return parser["Desktop Entry"]


def test_desktop_file_passes_desktop_file_validate() -> None:
    tool = require_tool("desktop-file-validate")
    done = subprocess.run([tool, str(DESKTOP_FILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "", done.stdout  # hints and warnings count too


def test_metainfo_passes_appstreamcli_validate() -> None:
    tool = require_tool("appstreamcli")
    done = subprocess.run(
        [tool, "validate", "--no-net", "--no-color", str(METAINFO)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "W:" not in done.stdout and "E:" not in done.stdout, done.stdout


def test_desktop_entry_opens_eml_files_through_the_outbox_command() -> None:
    entry = _desktop_entry()
    assert entry["Exec"] == "outbox gui %F"
    assert "message/rfc822" in entry["MimeType"].split(";")
    assert entry["Icon"] == APP_ID
    assert "Email" in entry["Categories"].split(";")


def test_metainfo_names_the_desktop_entry_the_screenshot_and_release_0_1_0() -> None:
    root = ET.parse(METAINFO).getroot()
    assert root.findtext("id") == APP_ID
    assert root.findtext("launchable") == DESKTOP_FILE.name
    image = root.findtext("screenshots/screenshot/image")
    assert image is not None and image.endswith("docs/screenshot.png")
    versions = [release.get("version") for release in root.iterfind("releases/release")]
    assert versions[0] == "0.1.0"
    assert root.find("releases/release/description") is not None


def test_every_png_icon_is_the_size_its_folder_says() -> None:
    for size in PNG_SIZES:
        png = RESOURCES / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        header = png.read_bytes()[:24]
        assert header[:8] == b"\x89PNG\r\n\x1a\n", png
        width, height = struct.unpack(">II", header[16:24])
        assert (width, height) == (size, size), png
