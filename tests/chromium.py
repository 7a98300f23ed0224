"""Headless Chromium as the tests run it: one page drawn (--screenshot) or parsed
(--dump-dom), with no network, no profile of the machine's user and scale 1."""

from __future__ import annotations

import subprocess
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def run_chromium(tmp: Path, url: str, *extra: str, window: tuple[int, int]) -> str:
    """Chromium's stdout (the DOM with --dump-dom) for `url` at `window` CSS pixels."""
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp / 'profile'}", "--hide-scrollbars",
         "--force-device-scale-factor=1", f"--window-size={window[0]},{window[1]}", *extra,
         url],
        capture_output=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    return proc.stdout.decode("utf-8")
