"""H.264/HEVC NAL units: parameter sets and encoder SEI from a keyframe's first bytes. Pure.

The probe hands over the stream's extradata (avcC/hvcC or Annex B) once and, at every
keyframe, the packet's first `HEAD_BYTES` and any new extradata the packet carries, all
as `bytes`; no PyAV object comes here. What it keeps per stream:
- the parameter sets (SPS/PPS, and VPS for HEVC) each time they change, as one Annex B
  blob with the packet index where the change was seen;
- the printable text of every user_data_unregistered SEI message (x264 and x265 write
  their version and options there), with its packet index. A second banner later in a
  stream is what a stream-copy join of two encodes leaves.

Nothing is decoded: a unit is classified by its header byte(s), emulation-prevention
bytes are removed only from SEI bodies, and a head cut off mid-unit (a packet longer than
`HEAD_BYTES`, a truncated file) yields the units that fit and never raises. Hand-written:
no maintained Python library parses SEI messages or avcC/hvcC records without decoding.
"""

from __future__ import annotations

__all__ = [
    "HEAD_BYTES",
    "PARAM_CODECS",
    "ParamInspector",
    "extradata_nals",
    "nal_type",
    "sei_texts",
    "split_nals",
    "unescape",
]

# Bytes of a keyframe inspected for parameter sets and SEI. x264's SEI text (about 700
# bytes with its option list) and the SPS/PPS sit at the very start of an IDR packet.
HEAD_BYTES = 4096
PARAM_CODECS = frozenset({"h264", "hevc"})
# NAL unit types of parameter sets: H.264 SPS 7, PPS 8; HEVC VPS 32, SPS 33, PPS 34.
PS_TYPES = {"h264": frozenset({7, 8}), "hevc": frozenset({32, 33, 34})}


class ParamInspector:
    """Parameter sets and encoder SEI of one video stream, seen at keyframes only.

    Other codecs keep their extradata whole, a new entry each time it changes.
    """

    __slots__ = ("codec", "length_size", "param_sets", "signatures", "state")

    def __init__(self, codec: str, extradata: bytes | None) -> None:
        self.codec = codec
        self.param_sets: list[tuple[int, bytes]] = []
        self.signatures: list[tuple[int, str]] = []
        self.state: dict[int, bytes] = {}
        self.length_size = 0  # 0: Annex B start codes; 1-4: length-prefixed (avcC/hvcC)
        ed = bytes(extradata or b"")
        if codec in PARAM_CODECS:
            nals, self.length_size = extradata_nals(codec, ed)
            if nals:
                self._update(nals, 0)
        elif ed:
            self.param_sets.append((0, ed))

    @property
    def parses_nals(self) -> bool:
        """Whether `inspect` reads the packet's head (H.264/HEVC); else only extradata."""
        return self.codec in PARAM_CODECS

    def inspect(self, head: bytes, index: int, new_extradata: bytes | None = None) -> None:
        """Packet `index` (a keyframe): its first bytes and the new extradata it carries."""
        if new_extradata is not None:
            ed = new_extradata
            if self.codec in PARAM_CODECS:
                nals, length_size = extradata_nals(self.codec, ed)
                if length_size:
                    self.length_size = length_size
                self._update(nals, index)
            elif ed and (not self.param_sets or self.param_sets[-1][1] != ed):
                self.param_sets.append((index, ed))
        if self.codec not in PARAM_CODECS:
            return
        nals = split_nals(head[:HEAD_BYTES], self.length_size)
        self._update(nals, index)
        for nal in nals:
            for text in sei_texts(self.codec, nal):
                # Every occurrence: the same encoder's banner again at a later keyframe
                # is what a stream-copy join of two recordings leaves.
                self.signatures.append((index, text))

    def _update(self, nals: list[bytes], index: int) -> None:
        fresh: dict[int, list[bytes]] = {}
        for nal in nals:
            t = nal_type(self.codec, nal)
            if t in PS_TYPES[self.codec]:
                fresh.setdefault(t, []).append(nal)
        if not fresh:
            return
        changed = False
        for t, group in fresh.items():
            blob = b"".join(b"\x00\x00\x00\x01" + n for n in group)
            if self.state.get(t) != blob:
                self.state[t] = blob
                changed = True
        if changed:
            self.param_sets.append((index, b"".join(self.state[t] for t in sorted(self.state))))


def nal_type(codec: str, nal: bytes) -> int:
    """The unit's type from its header (H.264: 5 bits; HEVC: 6 bits); -1 for no bytes."""
    if not nal:
        return -1
    if codec == "h264":
        return nal[0] & 0x1F
    return (nal[0] >> 1) & 0x3F


def extradata_nals(codec: str, ed: bytes) -> tuple[list[bytes], int]:
    """NAL units of avcC/hvcC (or Annex B) extradata, and the packets' NAL length size.

    A record cut short gives no units and length size 4 (what encoders write)."""
    if not ed:
        return [], 0
    if ed[:3] == b"\x00\x00\x01" or ed[:4] == b"\x00\x00\x00\x01":
        return split_nals(ed, 0), 0
    try:
        if codec == "h264":
            return _avcc_nals(ed)
        return _hvcc_nals(ed)
    except IndexError:
        return [], 4


def _avcc_nals(ed: bytes) -> tuple[list[bytes], int]:
    length_size = (ed[4] & 3) + 1
    nals: list[bytes] = []
    p = 5
    for count_mask in (0x1F, 0xFF):
        count = ed[p] & count_mask
        p += 1
        for _ in range(count):
            n = int.from_bytes(ed[p : p + 2], "big")
            p += 2
            nals.append(ed[p : p + n])
            p += n
        if p >= len(ed):
            break
    return nals, length_size


def _hvcc_nals(ed: bytes) -> tuple[list[bytes], int]:
    length_size = (ed[21] & 3) + 1
    nals: list[bytes] = []
    arrays = ed[22]
    p = 23
    for _ in range(arrays):
        p += 1  # array_completeness, reserved, NAL_unit_type
        count = int.from_bytes(ed[p : p + 2], "big")
        p += 2
        for _ in range(count):
            n = int.from_bytes(ed[p : p + 2], "big")
            p += 2
            nals.append(ed[p : p + n])
            p += n
    return nals, length_size


def split_nals(data: bytes, length_size: int) -> list[bytes]:
    """NAL units in `data` (maybe cut short): length-prefixed, or Annex B if size is 0."""
    nals: list[bytes] = []
    if length_size:
        p = 0
        n = len(data)
        while p + length_size <= n:
            size = int.from_bytes(data[p : p + length_size], "big")
            p += length_size
            if size <= 0:
                break
            nals.append(data[p : p + size])
            p += size
        return nals
    starts: list[int] = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i + 3)
        i = data.find(b"\x00\x00\x01", i + 3)
    for k, s in enumerate(starts):
        end = starts[k + 1] - 3 if k + 1 < len(starts) else len(data)
        nal = data[s:end]
        # A 4-byte start code leaves a trailing zero on the previous unit.
        if k + 1 < len(starts):
            nal = nal.rstrip(b"\x00")
        nals.append(nal)
    return nals


def unescape(rbsp: bytes) -> bytes:
    """Remove emulation-prevention bytes (00 00 03 -> 00 00)."""
    return rbsp.replace(b"\x00\x00\x03", b"\x00\x00")


def _sei_number(body: bytes, p: int) -> tuple[int, int]:
    """An SEI payload type or size at `p` (0xFF bytes add 255 each, then a last byte) and
    the position after it; a position past the end when the body ends first."""
    value = 0
    while p < len(body) and body[p] == 0xFF:
        value += 255
        p += 1
    if p >= len(body):
        return value, len(body) + 1
    return value + body[p], p + 1


def sei_texts(codec: str, nal: bytes) -> list[str]:
    """Printable text of user_data_unregistered SEI messages (x264/x265 write options)."""
    if codec == "h264":
        if nal_type(codec, nal) != 6:
            return []
        body = unescape(nal[1:])
    else:
        if nal_type(codec, nal) not in (39, 40):
            return []
        body = unescape(nal[2:])
    texts: list[str] = []
    p = 0
    while p < len(body) and body[p] != 0x80:
        ptype, p = _sei_number(body, p)
        psize, p = _sei_number(body, p)
        if p > len(body):
            break
        payload = body[p : p + psize]
        p += psize
        if ptype == 5 and len(payload) > 16:
            text = payload[16:].split(b"\x00", 1)[0]
            decoded = text.decode("utf-8", "replace").strip()
            if decoded and decoded.isprintable():
                texts.append(decoded)
    return texts
