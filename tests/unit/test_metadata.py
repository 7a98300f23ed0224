"""pipeline.media.metadata: a file's device claims from tags, boxes and EXIF."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.media.exif import ExifInfo
from pipeline.media.isobmff import MovieInfo
from pipeline.media.metadata import device_fields, exif_fields, merged_tags, parse_time

UTC = dt.UTC
NONE = {"creation_time_utc": None, "make": None, "model": None, "serial": None,
        "gps_iso6709": None}  # fmt: skip


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T08:00:00.000000Z", dt.datetime(2024, 5, 1, 8, 0, tzinfo=UTC)),
        ("2024-05-01T10:30:00+0200", dt.datetime(2024, 5, 1, 8, 30, tzinfo=UTC)),
        ("2024-05-01T08:00:00+08:00", dt.datetime(2024, 5, 1, 0, 0, tzinfo=UTC)),
        (" 2024-05-01 08:00:00 ", dt.datetime(2024, 5, 1, 8, 0, tzinfo=UTC)),
    ],
)
def test_tag_times_become_utc(value: str, expected: dt.datetime) -> None:
    got = parse_time(value)
    assert got == expected and got is not None and got.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("value", ["", "   ", "yesterday", "2024:05:01 08:00:00"])
def test_values_that_are_no_iso_time_are_ignored(value: str) -> None:
    assert parse_time(value) is None


def test_apple_keys_win_over_plain_tags() -> None:
    tags = {
        "com.apple.quicktime.make": "Apple", "make": "Other",
        "com.apple.quicktime.model": "iPhone 14 Pro", "model": "X",
        "com.apple.quicktime.creationdate": "2023-01-02T03:04:05+0800",
        "creation_time": "2023-01-01T00:00:00.000000Z",
        "com.apple.quicktime.location.ISO6709": "+31.2304+121.4737+004.000/",
    }  # fmt: skip
    assert device_fields(tags, None, None) == {
        "creation_time_utc": dt.datetime(2023, 1, 1, 19, 4, 5, tzinfo=UTC),
        "make": "Apple",
        "model": "iPhone 14 Pro",
        "serial": None,
        "gps_iso6709": "+31.2304+121.4737+004.000/",
    }


def test_android_keys_and_plain_serial() -> None:
    tags = {"com.android.manufacturer": "Google", "com.android.model": "Pixel 4 XL",
            "serial_number": " SN42 ", "location": "+22.5+114.0/"}  # fmt: skip
    fields = device_fields(tags, None, None)
    assert (fields["make"], fields["model"], fields["serial"], fields["gps_iso6709"]) == (
        "Google", "Pixel 4 XL", "SN42", "+22.5+114.0/")


def test_an_unreadable_creation_time_falls_through_to_the_next_key() -> None:
    tags = {"com.apple.quicktime.creationdate": "garbage", "creation_time": "",
            "date": "2024-05-01T08:00:00Z"}  # fmt: skip
    assert device_fields(tags, None, None)["creation_time_utc"] == dt.datetime(
        2024, 5, 1, 8, 0, tzinfo=UTC)


def test_blank_tags_count_as_missing() -> None:
    assert device_fields({"make": "  ", "model": "", "serial": "\t"}, None, None) == NONE


def test_boxes_fill_make_model_serial_the_tags_leave_open() -> None:
    boxes = MovieInfo(make="GoPro", model="HERO5", serial="C3131", firmware="HD5.02")
    fields = device_fields({"model": "Karma"}, boxes, None)
    assert (fields["make"], fields["model"], fields["serial"]) == ("GoPro", "Karma", "C3131")


def test_exif_fills_only_what_tags_and_boxes_did_not_say() -> None:
    info = ExifInfo(make="Google", model="Pixel 4 XL", serial="EX1",
                    datetime_original_utc=dt.datetime(2020, 1, 1, tzinfo=UTC),
                    gps_iso6709="+01+002/")  # fmt: skip
    fields = device_fields({"make": "Tagged"}, MovieInfo(serial="BOX"), info)
    assert fields == {
        "creation_time_utc": dt.datetime(2020, 1, 1, tzinfo=UTC),
        "make": "Tagged",
        "model": "Pixel 4 XL",
        "serial": "BOX",
        "gps_iso6709": "+01+002/",
    }


def test_exif_fields_alone() -> None:
    assert exif_fields(None) == {}
    assert exif_fields(ExifInfo(make="Canon")) == {**NONE, "make": "Canon"}


def test_exif_tags_are_added_with_a_prefix_and_never_replace_a_tag() -> None:
    info = ExifInfo(tags={"Make": "Google", "Model": "Pixel"})
    assert merged_tags({"exif:Model": "kept", "title": "t"}, info) == {
        "exif:Model": "kept", "title": "t", "exif:Make": "Google"}
    assert merged_tags({"title": "t"}, None) == {"title": "t"}
