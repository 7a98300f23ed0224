"""pipeline.media.nal on NAL units built in the test and on a real x264 keyframe."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from pipeline.media.nal import (
    HEAD_BYTES,
    ParamInspector,
    extradata_nals,
    nal_type,
    sei_texts,
    split_nals,
    unescape,
)

# SPS and PPS x264 (veryfast, 64x48, 25 fps) writes: High profile (100), level 1.0; the SPS
# carries two emulation-prevention bytes in its VUI timing fields.
SPS = bytes.fromhex("6764000aacd9447a1000000300100000030320f1225960")
PPS = bytes.fromhex("68ef8fcb")
SPS_RBSP = bytes.fromhex("6764000aacd9447a100000001000000320f1225960")
X264_UUID = bytes.fromhex("dc45e9bde6d948b7962cd820d923eeef")
START4 = b"\x00\x00\x00\x01"


def sei(payloads: list[tuple[int, bytes]], *, hevc: bool = False) -> bytes:
    """An SEI NAL unit (escaped) holding `payloads` as (type, body), with its stop bit."""
    rbsp = bytearray()
    for ptype, body in payloads:
        for value in (ptype, len(body)):
            rbsp += b"\xff" * (value // 255) + bytes([value % 255])
        rbsp += body
    rbsp += b"\x80"
    header = b"\x4e\x01" if hevc else b"\x06"
    return header + escape(bytes(rbsp))


def escape(rbsp: bytes) -> bytes:
    """Insert emulation-prevention bytes: 00 00 followed by 00-03 gets a 03 in between."""
    out = bytearray()
    zeros = 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def unregistered(text: bytes, uuid: bytes = X264_UUID) -> tuple[int, bytes]:
    return 5, uuid + text + b"\x00"


# --- unit types, splitting, unescaping -------------------------------------------------


def test_h264_unit_types_come_from_the_low_five_bits() -> None:
    assert [nal_type("h264", n) for n in (SPS, PPS, b"\x06", b"\x65", b"\x41")] == [
        7, 8, 6, 5, 1]


def test_hevc_unit_types_come_from_six_bits_after_the_forbidden_bit() -> None:
    heads = (b"\x40\x01", b"\x42\x01", b"\x44\x01", b"\x4e\x01", b"\x50\x01", b"\x26\x01")
    assert [nal_type("hevc", h) for h in heads] == [32, 33, 34, 39, 40, 19]


def test_an_empty_unit_has_no_type() -> None:
    assert nal_type("h264", b"") == -1
    assert nal_type("hevc", b"") == -1


def test_annex_b_units_split_at_three_and_four_byte_start_codes() -> None:
    data = START4 + SPS + START4 + PPS + b"\x00\x00\x01" + b"\x65\x88\x84"
    assert split_nals(data, 0) == [SPS, PPS, b"\x65\x88\x84"]


def test_length_prefixed_units_split_by_their_sizes() -> None:
    data = b"".join(len(n).to_bytes(4, "big") + n for n in (SPS, PPS))
    assert split_nals(data, 4) == [SPS, PPS]
    data2 = b"".join(len(n).to_bytes(2, "big") + n for n in (SPS, PPS))
    assert split_nals(data2, 2) == [SPS, PPS]


def test_a_unit_cut_off_at_the_end_is_kept_as_far_as_it_goes() -> None:
    data = len(SPS).to_bytes(4, "big") + SPS + (1000).to_bytes(4, "big") + b"\x06\x05\x10"
    assert split_nals(data, 4) == [SPS, b"\x06\x05\x10"]
    # a length field cut off is no unit at all
    assert split_nals(data[: 4 + len(SPS) + 2], 4) == [SPS]


def test_a_zero_length_ends_the_split() -> None:
    data = len(PPS).to_bytes(4, "big") + PPS + b"\x00\x00\x00\x00" + len(SPS).to_bytes(4, "big")
    assert split_nals(data + SPS, 4) == [PPS]


def test_emulation_prevention_bytes_are_removed_once() -> None:
    assert unescape(SPS) == SPS_RBSP
    assert unescape(b"\x00\x00\x03\x00\x00\x03\x01") == b"\x00\x00\x00\x00\x01"
    assert unescape(b"\x00\x03\x00") == b"\x00\x03\x00"


# --- SEI ---------------------------------------------------------------------------------


def test_x264_banner_is_read_from_user_data_unregistered() -> None:
    nal = sei([unregistered(b"x264 - core 999 - options: cabac=1")])
    assert sei_texts("h264", nal) == ["x264 - core 999 - options: cabac=1"]


def test_payload_sizes_of_255_bytes_and_more_take_several_bytes() -> None:
    text = bytes(range(0x21, 0x7F)) * 3  # 282 printable bytes: payload 16 + 282 + 1 = 299
    nal = sei([unregistered(text)])
    assert nal[1:4] == b"\x05\xff\x2c"  # type 5, size 255 + 44
    assert sei_texts("h264", nal) == [text.decode()]


def test_payload_type_of_255_and_more_is_skipped_with_its_body() -> None:
    nal = sei([(300, b"\x01" * 20), (1, b"\x02\x03"), unregistered(b"x265 (build 199)")])
    assert sei_texts("h264", nal) == ["x265 (build 199)"]


def test_sei_sizes_count_unescaped_bytes() -> None:
    """A UUID of zeros is escaped (00 00 03 ...); its payload size is the unescaped one."""
    nal = sei([unregistered(b"encoder v1", uuid=b"\x00" * 16)])
    assert nal.count(b"\x00\x00\x03") == 7
    assert sei_texts("h264", nal) == ["encoder v1"]


def test_every_unregistered_message_of_one_unit_is_read() -> None:
    nal = sei([unregistered(b"first"), (6, b"\x80"), unregistered(b"second")])
    assert sei_texts("h264", nal) == ["first", "second"]


def test_hevc_prefix_and_suffix_sei_are_read() -> None:
    nal = sei([unregistered(b"x265 (build 209) - 3.6")], hevc=True)
    assert sei_texts("hevc", nal) == ["x265 (build 209) - 3.6"]
    assert sei_texts("hevc", b"\x50\x01" + nal[2:]) == ["x265 (build 209) - 3.6"]


def test_only_sei_units_are_read() -> None:
    body = sei([unregistered(b"text")])[1:]
    assert sei_texts("h264", b"\x65" + body) == []
    assert sei_texts("hevc", b"\x26\x01" + body) == []


def test_unprintable_or_empty_text_and_short_payloads_are_no_signature() -> None:
    nal = sei([unregistered(b"\x01\x02"), unregistered(b"   "), (5, X264_UUID)])
    assert sei_texts("h264", nal) == []


def test_sei_cut_off_in_its_payload_keeps_the_text_that_is_there() -> None:
    nal = sei([unregistered(b"x264 - core 164 - options: cabac=1 ref=3")])
    cut = nal[: 1 + 2 + 16 + 20]
    assert sei_texts("h264", cut) == ["x264 - core 164 - op"]


def test_sei_cut_off_in_its_size_gives_nothing() -> None:
    nal = sei([unregistered(bytes(range(0x21, 0x7F)) * 3)])
    assert sei_texts("h264", nal[:3]) == []  # header, type, first 0xFF of the size
    assert sei_texts("h264", nal[:2]) == []


# --- extradata -------------------------------------------------------------------------


def avcc(sps: list[bytes], pps: list[bytes], length_size: int = 4) -> bytes:
    out = bytes([1, 0x64, 0, 0x0A, 0xFC | (length_size - 1), 0xE0 | len(sps)])
    out += b"".join(len(n).to_bytes(2, "big") + n for n in sps)
    out += bytes([len(pps)]) + b"".join(len(n).to_bytes(2, "big") + n for n in pps)
    return out


def hvcc(arrays: list[tuple[int, list[bytes]]], length_size: int = 4) -> bytes:
    out = bytearray(23)
    out[0] = 1
    out[21] = 0xFC | (length_size - 1)
    out[22] = len(arrays)
    for t, nals in arrays:
        out += bytes([0x80 | t]) + len(nals).to_bytes(2, "big")
        out += b"".join(len(n).to_bytes(2, "big") + n for n in nals)
    return bytes(out)


def test_avcc_gives_its_parameter_sets_and_length_size() -> None:
    assert extradata_nals("h264", avcc([SPS], [PPS])) == ([SPS, PPS], 4)
    assert extradata_nals("h264", avcc([SPS], [PPS, b"\x68\xce"], 2)) == (
        [SPS, PPS, b"\x68\xce"], 2)


def test_hvcc_gives_its_parameter_sets_and_length_size() -> None:
    vps, sps, pps = b"\x40\x01\x0c", b"\x42\x01\x01", b"\x44\x01\xc1"
    ed = hvcc([(32, [vps]), (33, [sps]), (34, [pps])], length_size=4)
    assert extradata_nals("hevc", ed) == ([vps, sps, pps], 4)


def test_annex_b_extradata_is_split_at_start_codes() -> None:
    assert extradata_nals("h264", START4 + SPS + START4 + PPS) == ([SPS, PPS], 0)


def test_cut_off_or_empty_extradata_gives_no_units() -> None:
    assert extradata_nals("h264", avcc([SPS], [PPS])[:5]) == ([], 4)
    assert extradata_nals("hevc", b"\x01" * 10) == ([], 4)
    assert extradata_nals("h264", b"") == ([], 0)


# --- the inspector -----------------------------------------------------------------------


def annex_b(*nals: bytes) -> bytes:
    return b"".join(START4 + n for n in nals)


def length_prefixed(*nals: bytes) -> bytes:
    return b"".join(len(n).to_bytes(4, "big") + n for n in nals)


def test_inspector_starts_from_the_extradata_at_packet_zero() -> None:
    insp = ParamInspector("h264", avcc([SPS], [PPS]))
    assert insp.length_size == 4
    assert insp.param_sets == [(0, annex_b(SPS, PPS))]


def test_same_parameter_sets_again_are_no_change() -> None:
    insp = ParamInspector("h264", avcc([SPS], [PPS]))
    insp.inspect(length_prefixed(SPS, PPS, b"\x65\x88"), 30)
    assert insp.param_sets == [(0, annex_b(SPS, PPS))]


def test_a_new_pps_is_a_change_holding_the_current_sps_too() -> None:
    insp = ParamInspector("h264", avcc([SPS], [PPS]))
    insp.inspect(length_prefixed(b"\x68\xce\x38\x80", b"\x65\x88"), 60)
    assert insp.param_sets == [
        (0, annex_b(SPS, PPS)), (60, annex_b(SPS, b"\x68\xce\x38\x80"))]


def test_every_banner_is_kept_with_its_packet() -> None:
    banner = sei([unregistered(b"x264 - core 164")])
    insp = ParamInspector("h264", None)
    insp.inspect(annex_b(SPS, PPS, banner, b"\x65"), 0)
    insp.inspect(annex_b(banner, b"\x65"), 30)
    assert insp.signatures == [(0, "x264 - core 164"), (30, "x264 - core 164")]
    assert insp.param_sets == [(0, annex_b(SPS, PPS))]


def test_new_extradata_in_a_packet_sets_the_length_size() -> None:
    insp = ParamInspector("h264", None)
    insp.inspect(b"", 5, new_extradata=avcc([SPS], [PPS], length_size=2))
    insp.inspect((len(PPS) + 1).to_bytes(2, "big") + PPS + b"\x01", 10)
    assert insp.length_size == 2
    assert insp.param_sets == [(5, annex_b(SPS, PPS)), (10, annex_b(SPS, PPS + b"\x01"))]


def test_only_the_first_head_bytes_are_read() -> None:
    banner = sei([unregistered(b"late banner")])
    head = annex_b(b"\x65" + b"\x11" * HEAD_BYTES, banner)
    insp = ParamInspector("h264", None)
    insp.inspect(head, 0)
    assert insp.signatures == []


def test_other_codecs_keep_their_extradata_whole() -> None:
    insp = ParamInspector("mpeg4", b"\x00\x00\x01\xb0\x01")
    assert not insp.parses_nals
    insp.inspect(b"\x00\x00\x01\xb6", 12, new_extradata=b"\x00\x00\x01\xb0\x01")
    insp.inspect(b"", 24, new_extradata=b"\x00\x00\x01\xb0\x02")
    assert insp.param_sets == [(0, b"\x00\x00\x01\xb0\x01"), (24, b"\x00\x00\x01\xb0\x02")]
    assert insp.signatures == []


# --- a real x264 keyframe ------------------------------------------------------------------


@pytest.fixture(scope="module")
def x264_keyframe() -> bytes:
    """The first packet libx264 writes for a 64x48 picture (Annex B, no global header)."""
    cc = av.CodecContext.create("libx264", "w")
    cc.width, cc.height, cc.pix_fmt = 64, 48, "yuv420p"
    cc.time_base = Fraction(1, 25)
    cc.framerate = Fraction(25)
    cc.options = {"preset": "veryfast"}
    packets = []
    for i in range(3):
        frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), "rgb24")
        frame.pts = i
        packets += cc.encode(frame)
    packets += cc.encode(None)
    assert packets[0].is_keyframe
    return bytes(packets[0])


def test_x264_keyframe_holds_sps_pps_sei_and_idr(x264_keyframe: bytes) -> None:
    nals = split_nals(x264_keyframe, 0)
    assert [nal_type("h264", n) for n in nals] == [7, 8, 6, 5]
    assert nals[0] == SPS and nals[1] == PPS


def test_x264_banner_equals_the_text_after_its_uuid(x264_keyframe: bytes) -> None:
    at = x264_keyframe.index(X264_UUID) + 16
    expected = x264_keyframe[at : x264_keyframe.index(b"\x00", at)].decode()
    assert len(expected) > 255 and expected.startswith("x264 - core ")
    assert sei_texts("h264", split_nals(x264_keyframe, 0)[2]) == [expected]


def test_x264_keyframe_through_the_inspector(x264_keyframe: bytes) -> None:
    insp = ParamInspector("h264", None)
    insp.inspect(x264_keyframe, 0)
    insp.inspect(x264_keyframe, 25)
    assert insp.param_sets == [(0, annex_b(SPS, PPS))]
    assert [i for i, _ in insp.signatures] == [0, 25]
    assert insp.signatures[0][1].startswith("x264 - core ")
