"""BagIt (RFC 8493) files, written by hand: the payload is copied once, by `make`, which
hashes and checks it in the same pass; this module only formats and parses the small tag
files around it. bagit-python is what the tests (and any receiver) validate with; it is
not used to write, because `bagit.make_bag` re-reads every payload file to hash it after
it is in place, a second full read of evidence the copy already hashed.

Pure: names, lines and bytes in and out; no file is opened here.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterable, Mapping

BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
ALGORITHMS: tuple[str, ...] = ("sha512", "sha256", "sm3")
DEFAULT_ALGORITHMS: tuple[str, ...] = ("sha512", "sha256")
# bagit-python and most validators know sha*/md5 manifests only; SM3 is a tag file beside.
SM3_MANIFEST = "sm3-manifest.txt"
TITLES = {"sha512": "SHA-512", "sha256": "SHA-256", "sm3": "SM3", "sha1": "SHA-1", "md5": "MD5"}
SOURCE_ORGANIZATION = "大柘镇人民政府"


def manifest_name(algorithm: str) -> str:
    return SM3_MANIFEST if algorithm == "sm3" else f"manifest-{algorithm}.txt"


def encode_path(path: str) -> str:
    """RFC 8493 section 2.1.3: CR, LF and % in a manifest's file path are percent-encoded."""
    return path.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def decode_path(path: str) -> str:
    return path.replace("%0D", "\r").replace("%0d", "\r").replace("%0A", "\n") \
        .replace("%0a", "\n").replace("%25", "%")


def safe_name(name: str) -> str:
    """A file name for data/: the display form, without path separators or control
    characters (which `sha256sum -c` and Windows receivers would trip on)."""
    out = "".join("_" if (unicodedata.category(c).startswith("C") or c in "/\\") else c
                  for c in name).strip()
    if out in ("", ".", ".."):
        out = "_" + out
    return out


def payload_paths(names: Iterable[str]) -> list[str]:
    """`data/<name>` per item, in order; two items whose names are equal ignoring case
    (or Unicode form) go under `data/<item number>/<name>` each, so none overwrites another
    on any receiver's file system."""
    names = [safe_name(n) for n in names]
    keys = [unicodedata.normalize("NFC", n).casefold() for n in names]
    out = []
    for i, (n, k) in enumerate(zip(names, keys, strict=True), 1):
        out.append(f"data/{n}" if keys.count(k) == 1 else f"data/{i:03d}/{n}")
    return out


def manifest(entries: Iterable[tuple[str, str]]) -> bytes:
    """Manifest lines `<hex>  <path>` (two spaces: what `sha256sum -c` reads too)."""
    return "".join(f"{digest}  {encode_path(path)}\n" for path, digest in entries).encode()


def parse_manifest(data: bytes) -> list[tuple[str, str]]:
    """(path, hex digest) of each line; ValueError naming a line that is not one."""
    out = []
    for n, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, path = line.partition(" ")
        if not sep or not path.strip():
            raise ValueError(f"line {n} is not '<digest> <path>'")
        out.append((decode_path(path.lstrip(" ").removeprefix("*")), digest.lower()))
    return out


def bag_info(
    *, export_id: str, bagging_date: dt.date, payload_bytes: int, payload_files: int,
    case_number: str | None, recipient: str, tool: str,
) -> bytes:
    fields = [
        ("Source-Organization", SOURCE_ORGANIZATION),
        ("Bagging-Date", bagging_date.isoformat()),
        ("Payload-Oxum", f"{payload_bytes}.{payload_files}"),
        ("External-Identifier", export_id),
        ("Bag-Software-Agent", tool),
        ("Internal-Sender-Description",
         f"电子数据移交 {export_id}" + (f"，案号 {case_number}" if case_number else "")
         + f"，接收单位 {recipient}"),
    ]
    if case_number:
        fields.append(("Bag-Group-Identifier", case_number))
    return "".join(f"{k}: {v.replace(chr(10), ' ')}\n" for k, v in fields).encode()


def parse_bag_info(data: bytes) -> Mapping[str, str]:
    out: dict[str, str] = {}
    for line in data.decode("utf-8").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out
