"""pytest plugin: recordings generated once per session with `pipeline.demo.synth`.

Registered from `tests/conftest.py` (`pytest_plugins`). Every fixture writes into one
session directory from `tmp_path_factory`, so the files are made once and shared by all
tests that ask for them. Small (320x240, 30 fps, 1 s GOP, 48 kHz AAC) so the whole set
takes a few seconds; the known truth of each file is returned with it. Their audio is a
quiet tone and real speech (`pipeline.demo.speech`), as the voice check needs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.demo import synth

START = dt.datetime(2024, 5, 1, 8, 0, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Generated:
    """A generated file and what was done to it (seconds of presentation time)."""

    path: Path
    cut_at_s: float | None = None  # where the interruption / cut begins
    cut_s: float | None = None  # how long it is (gap) or how much was removed


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mediagen")


@pytest.fixture(scope="session")
def clean_recording(media_dir: Path) -> Generated:
    """6 s continuous recording."""
    return Generated(synth.write_clean(media_dir / "clean.mp4", 6.0, START))


@pytest.fixture(scope="session")
def short_recording(media_dir: Path) -> Generated:
    """2.5 s recording: ends half-way through a GOP, as a camera's file usually does."""
    return Generated(synth.write_clean(media_dir / "short.mp4", 2.5, START))


@pytest.fixture(scope="session")
def interrupted_recording(media_dir: Path) -> Generated:
    """8 s of media; the camera stopped 3.5 s in and resumed 5 s later; the officer
    speaks (Mandarin, espeak-ng) from 0.5 s after the resume: explained by voice."""
    path = synth.write_with_interruption(
        media_dir / "interrupted.mp4", 8.0, START, gap_at_s=3.5, gap_s=5.0
    )
    return Generated(path, cut_at_s=3.5, cut_s=5.0)


@pytest.fixture(scope="session")
def dropped_recording(media_dir: Path, clean_recording: Generated) -> Generated:
    """The clean recording with the packets of 2.0-3.0 s removed, not retimed."""
    path = synth.drop_packets(clean_recording.path, media_dir / "dropped.mp4", 2.0, 3.0)
    return Generated(path, cut_at_s=2.0, cut_s=1.0)


@pytest.fixture(scope="session")
def retimed_recording(media_dir: Path, clean_recording: Generated) -> Generated:
    """The clean recording with the GOPs of 2.0-4.0 s removed and later times moved back."""
    path = synth.drop_and_retime(clean_recording.path, media_dir / "retimed.mp4", 2.0, 4.0)
    return Generated(path, cut_at_s=2.0, cut_s=2.0)


@pytest.fixture(scope="session")
def spliced_recording(
    media_dir: Path, short_recording: Generated, clean_recording: Generated
) -> Generated:
    """The 2.5 s recording followed by the 6 s one, stream-copied like ffmpeg concat."""
    path = synth.splice([short_recording.path, clean_recording.path], media_dir / "spliced.mp4")
    return Generated(path, cut_at_s=2.5)


@pytest.fixture(scope="session")
def audio_recording(media_dir: Path) -> Generated:
    """4 s AAC voice recording (.m4a)."""
    return Generated(synth.write_audio_only(media_dir / "voice.m4a", 4.0, START))


@pytest.fixture(scope="session")
def still_photo(media_dir: Path) -> Generated:
    """One JPEG photo."""
    return Generated(synth.write_still(media_dir / "photo.jpg", START))
