"""pipeline.rules: each compliance rule fires with its exact code and detail, and stays quiet."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle

import pytest

from pipeline.ingest.labels import Labels
from pipeline.rules import (
    ARCHIVE,
    FILE,
    RULES,
    Context,
    RecordingFacts,
    recorded_span,
    run_rules,
)
from pipeline.rules.archive import av15_name_reused
from pipeline.rules.devices import DeviceIndex
from pipeline.rules.recording import (
    aux23_staff,
    av8_creation_time,
    av10_device,
    av12_complete,
    av12_deadline,
    av12_labels,
)
from schemas.findings import finding_code
from schemas.media import Subject
from schemas.people import DEVICE_IN_SERVICE, DEVICE_RETIRED, DeviceEventRecord

START = dt.datetime(2026, 11, 27, 1, 30, tzinfo=dt.UTC)
NOW = START + dt.timedelta(hours=1)


def labels(**kw: object) -> Labels:
    base: dict[str, object] = dict(
        source="labels.csv line 2", file="A.mp4", case_number="遂大综执罚〔2026〕12号",
        inspected_entity="某公司", officer_ids=("ZF001",), recorded_start_utc=START,
    )
    base.update(kw)
    return Labels(**base)  # type: ignore[arg-type]


def facts(**kw: object) -> RecordingFacts:
    base: dict[str, object] = dict(file_name="A.mp4", labels=labels(),
                                   creation_time_utc=START, duration_seconds=60.0)
    base.update(kw)
    return RecordingFacts(**base)  # type: ignore[arg-type]


def device(serial: str, status: str = DEVICE_IN_SERVICE) -> DeviceEventRecord:
    return DeviceEventRecord(
        serial=serial, seq=1, event="registered", at_utc=START, actor_id="A-1", reason="",
        device_type="body_camera", section="综合执法队", custodian_id="ZF001", make=None,
        model=None, status=status,
    )


CTX = Context(now_utc=NOW)


def test_every_rule_emits_only_codes_of_its_rule_id() -> None:
    for rule in RULES:
        for code in rule.codes:
            owner = finding_code(code).rule
            assert owner == rule.rule_id or (rule.rule_id == "AUX-2/3" and owner == "AV-12")


def test_rules_and_their_inputs_are_picklable() -> None:
    ctx = dataclasses.replace(CTX, devices=DeviceIndex([device("DSJ-1")]),
                              staff_kinds={"ZF001": "officer"})
    assert pickle.loads(pickle.dumps((RULES, facts(), ctx)))[2].devices.classify("dsj-1") == (
        "registered")


# --- AV-12 labels ---------------------------------------------------------------------------
def test_av12_no_labels_file_is_label_missing() -> None:
    (f,) = av12_labels(facts(labels=None), CTX)
    assert (f.code, f.detail) == ("LABEL_MISSING", "ingested without a labels file")


def test_av12_a_file_the_labels_file_does_not_name_is_label_missing() -> None:
    (f,) = av12_labels(facts(labels=None), dataclasses.replace(CTX, labels_given=True))
    assert (f.code, f.detail) == ("LABEL_MISSING", "no row of the labels file names this file")


def test_av12_a_bad_value_is_label_invalid_and_good_labels_are_quiet() -> None:
    (f,) = av12_labels(facts(labels=labels(problems=("labels.csv line 2: bad time",))), CTX)
    assert (f.code, f.detail) == ("LABEL_INVALID", "labels.csv line 2: bad time")
    assert av12_labels(facts(), CTX) == []


def test_av12_empty_required_labels_are_label_incomplete() -> None:
    (f,) = av12_complete(facts(labels=labels(case_number=None, officer_ids=())), CTX)
    assert (f.code, f.detail) == (
        "LABEL_INCOMPLETE", "labels.csv line 2: empty case_number, officer_ids")
    assert av12_complete(facts(), CTX) == []


# --- AUX-2/3 --------------------------------------------------------------------------------
def test_aux23_only_auxiliary_staff_is_auxiliary_only() -> None:
    ctx = dataclasses.replace(CTX, staff_kinds={"FZ01": "auxiliary", "FZ02": "auxiliary"})
    (f,) = aux23_staff(facts(labels=labels(officer_ids=("FZ01", "FZ02"))), ctx)
    assert f.code == "AUXILIARY_ONLY" and f.rule == "AUX-2/3"
    assert f.detail == ("labels.csv line 2: FZ01, FZ02 are all auxiliary staff; no certified "
                        "officer is labelled on this recording")


def test_aux23_an_officer_with_an_auxiliary_is_quiet() -> None:
    ctx = dataclasses.replace(CTX, staff_kinds={"ZF001": "officer", "FZ01": "auxiliary"})
    assert aux23_staff(facts(labels=labels(officer_ids=("ZF001", "FZ01"))), ctx) == []


def test_aux23_unknown_staff_is_label_invalid() -> None:
    ctx = dataclasses.replace(CTX, staff_kinds={"ZF001": "officer"})
    (f,) = aux23_staff(facts(labels=labels(officer_ids=("ZF001", "ZF404"))), ctx)
    assert (f.code, f.detail) == (
        "LABEL_INVALID", "labels.csv line 2: ZF404 not in the personnel registry")


def test_aux23_is_quiet_while_the_registry_is_empty() -> None:
    assert aux23_staff(facts(labels=labels(officer_ids=("FZ01",))), CTX) == []


# --- AV-8 -----------------------------------------------------------------------------------
def test_av8_creation_time_far_from_the_labelled_start_is_a_mismatch() -> None:
    meta = START + dt.timedelta(minutes=20)
    (f,) = av8_creation_time(facts(creation_time_utc=meta, duration_seconds=60.0), CTX)
    assert f.code == "CREATION_TIME_MISMATCH" and f.rule == "AV-8"
    assert f.detail == (f"labelled start {START.isoformat()}, file creation time "
                        f"{meta.isoformat()}: 1200 s apart")


def test_av8_tolerance_is_the_clock_tolerance_plus_the_duration() -> None:
    """Cameras stamp the start or the end: 10 min + the 5-minute recording is allowed."""
    meta = START + dt.timedelta(minutes=15)
    assert av8_creation_time(facts(creation_time_utc=meta, duration_seconds=300.0), CTX) == []
    naive = (START + dt.timedelta(minutes=16)).replace(tzinfo=None)  # MP4 times are UTC
    (f,) = av8_creation_time(facts(creation_time_utc=naive, duration_seconds=300.0), CTX)
    assert f.detail.endswith("960 s apart")


def test_av8_is_quiet_without_a_label_time_or_a_creation_time() -> None:
    assert av8_creation_time(facts(creation_time_utc=None), CTX) == []
    assert av8_creation_time(facts(labels=labels(recorded_start_utc=None)), CTX) == []


# --- AV-12 deadline -------------------------------------------------------------------------
def test_av12_stored_more_than_24_hours_after_the_end_is_ingest_late() -> None:
    ctx = dataclasses.replace(CTX, now_utc=START + dt.timedelta(hours=30))
    (f,) = av12_deadline(facts(duration_seconds=3600.0), ctx)
    end = START + dt.timedelta(hours=1)
    assert f.code == "INGEST_LATE" and f.rule == "AV-12"
    assert f.detail == (f"recording ended {end.isoformat()} and was stored "
                        f"{ctx.now_utc.isoformat()}, 29.0 h later (limit 24 h)")


def test_av12_stored_within_24_hours_is_quiet() -> None:
    ctx = dataclasses.replace(CTX, now_utc=START + dt.timedelta(hours=24, seconds=60))
    assert av12_deadline(facts(duration_seconds=60.0), ctx) == []


def test_av12_no_time_at_all_is_recording_time_unknown() -> None:
    (f,) = av12_deadline(facts(labels=None, creation_time_utc=None), CTX)
    assert (f.code, f.detail) == (
        "RECORDING_TIME_UNKNOWN",
        "no recorded_start label and no creation time in the file's metadata")


def test_the_labelled_start_wins_over_the_creation_time() -> None:
    meta = START + dt.timedelta(minutes=1)
    span = recorded_span(facts(creation_time_utc=meta, duration_seconds=10.0))
    assert (span.start_utc, span.end_utc, span.source) == (
        START, START + dt.timedelta(seconds=10), "label")
    span = recorded_span(facts(labels=None, creation_time_utc=meta, duration_seconds=None))
    assert (span.start_utc, span.end_utc, span.source) == (meta, meta, "metadata")


# --- AV-10 ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("serial", "state"), [("DSJ-9", "unknown"), ("DSJ-OLD", "retired")])
def test_av10_a_device_not_in_service_is_device_unknown_about_that_device(
    serial: str, state: str
) -> None:
    ctx = dataclasses.replace(
        CTX, devices=DeviceIndex([device("DSJ-1"), device("DSJ-OLD", DEVICE_RETIRED)]))
    (f,) = av10_device(facts(labels=labels(device_id=serial)), ctx)
    assert (f.code, f.detail) == (
        "DEVICE_UNKNOWN", f"device {serial!r} is {state} in the device registry")
    assert f.subject == Subject("device", serial)


def test_av10_no_device_named_is_device_unknown_about_the_recording() -> None:
    ctx = dataclasses.replace(CTX, devices=DeviceIndex([device("DSJ-1")]))
    (f,) = av10_device(facts(serial=None), ctx)
    assert f.detail == "neither labels nor metadata name the recording device"
    assert f.subject == Subject("recording")


def test_av10_a_registered_device_and_an_empty_registry_are_quiet() -> None:
    ctx = dataclasses.replace(CTX, devices=DeviceIndex([device("DSJ-1")]))
    assert av10_device(facts(serial="dsj-1"), ctx) == []  # any case
    assert av10_device(facts(serial="DSJ-9"), CTX) == []


# --- AV-15 ----------------------------------------------------------------------------------
def test_av15_a_name_archived_with_other_content_is_name_reused() -> None:
    ctx = dataclasses.replace(CTX, archived_names={"A.mp4": {"ab" * 32, "cd" * 32}})
    (f,) = av15_name_reused(facts(blake3="cd" * 32), ctx)
    assert (f.code, f.detail) == (
        "NAME_REUSED",
        "A.mp4 was archived before with other content (BLAKE3 abababababababab…); both are kept")


def test_av15_the_same_content_again_or_a_new_name_is_quiet() -> None:
    ctx = dataclasses.replace(CTX, archived_names={"A.mp4": {"ab" * 32}})
    assert av15_name_reused(facts(blake3="ab" * 32), ctx) == []
    assert av15_name_reused(facts(file_name="B.mp4", blake3="cd" * 32), ctx) == []
    assert av15_name_reused(facts(blake3=None), ctx) == []


# --- the registry ---------------------------------------------------------------------------
def test_run_rules_keeps_the_order_ingest_reports_and_splits_by_scope() -> None:
    ctx = dataclasses.replace(
        CTX, now_utc=START + dt.timedelta(days=3), staff_kinds={"FZ01": "auxiliary"},
        devices=DeviceIndex([device("DSJ-1")]),
        archived_names={"A.mp4": {"ab" * 32}},
    )
    f = facts(labels=labels(officer_ids=("FZ01",), inspected_entity=None,
                            problems=("bad activity",)),
              creation_time_utc=START + dt.timedelta(hours=1), serial="DSJ-9", blake3="cd" * 32)
    assert [x.code for x in run_rules(f, ctx)] == [
        "LABEL_INVALID", "AUXILIARY_ONLY", "LABEL_INCOMPLETE", "CREATION_TIME_MISMATCH",
        "INGEST_LATE", "DEVICE_UNKNOWN",
    ]
    assert [x.code for x in run_rules(f, ctx, scope=ARCHIVE)] == ["NAME_REUSED"]
    assert {r.scope for r in RULES} == {FILE, ARCHIVE}
