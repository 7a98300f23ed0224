"""What a commit is: its manifest (every part's name, rows, size and SHA-256), the local
catalog's hash-chained commit list, and who records commits in the audit log.

A catalog is tamper-evident because each commit's manifest goes into the audit chain,
which is sealed into WORM, before the batch becomes visible. Reading the audit chain on
every query would cost a full scan of the log, so the catalog keeps its own list of
commits, which the views read: on S3 the manifest objects (locked by the bucket's default
retention), locally `commits.jsonl`, one line per commit, each line linking to the one
before it through `pipeline.integrity.chain`. The audit record of a commit carries its
manifest and the digest of its line (or manifest object), so `verify` can check that the
two agree (`pipeline/catalog/tamper.py`).

Who records. The catalog layer cannot import the audit log (it sits above). A recorder is
a callable the audit side registers for a catalog's root (`register_recorder`): an
`AuditLog` opened for a catalog registers itself and unregisters on close, so every
commit made while the catalog's audit log is open in this process — by ingest, the
personnel registry, retention or export — is recorded without any of them passing it
along. A commit with no recorder (a library user with no audit log) still commits; verify
then names it CATALOG_COMMIT_UNRECORDED, which is what it is.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.errors import CatalogError
from pipeline.integrity import chain

MANIFEST_FORMAT = 1
COMMIT_LIST = "commits.jsonl"


@dataclass(frozen=True, slots=True)
class PartEntry:
    table: str
    name: str  # relative to the catalog's root or prefix
    rows: int
    size_bytes: int
    sha256: str
    version_id: str | None
    schema_id: str


@dataclass(frozen=True, slots=True)
class Manifest:
    batch_id: str
    day: str
    parts: tuple[PartEntry, ...]

    def doc(self) -> dict[str, object]:
        return {"format": MANIFEST_FORMAT, "batch_id": self.batch_id, "day": self.day,
                "parts": [asdict(p) for p in self.parts]}

    def to_json(self) -> bytes:
        return json.dumps(self.doc(), indent=1, sort_keys=True).encode()

    @classmethod
    def from_doc(cls, doc: object, where: str) -> Manifest:
        try:
            if not isinstance(doc, dict):
                raise TypeError("not an object")
            if doc.get("format") != MANIFEST_FORMAT:
                raise CatalogError(f"{where}: manifest format {doc.get('format')!r} unknown")
            return cls(
                batch_id=str(doc["batch_id"]),
                day=str(doc["day"]),
                parts=tuple(PartEntry(**p) for p in doc["parts"]),
            )
        except (KeyError, TypeError) as exc:
            raise CatalogError(f"{where}: not a catalog manifest: {exc}") from exc

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Manifest:
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise CatalogError(f"{where}: not a catalog manifest: {exc}") from exc
        return cls.from_doc(doc, where)


@dataclass(frozen=True, slots=True)
class Commit:
    """One commit as the catalog lists it: the manifest and the digest its audit record
    carries (the BLAKE3 of its commit-list line, or the SHA-256 of its manifest object)."""

    manifest: Manifest
    digest: str
    adopted: bool = False  # a batch of a catalog made before commits were recorded


# A recorder is told (catalog location, manifest, digest) before the commit is visible.
Recorder = Callable[[str, Manifest, str], object]

_recorders: dict[Path, list[Recorder]] = {}
_recorders_lock = threading.Lock()


def register_recorder(root: Path, recorder: Recorder) -> Callable[[], None]:
    """Record every commit of the catalog whose local state is `root` with `recorder`
    (the latest registered wins) until the returned function is called."""
    key = Path(root).resolve()
    with _recorders_lock:
        _recorders.setdefault(key, []).append(recorder)

    def unregister() -> None:
        with _recorders_lock:
            stack = _recorders.get(key, [])
            if recorder in stack:
                stack.remove(recorder)
            if not stack:
                _recorders.pop(key, None)

    return unregister


def recorder_for(root: Path) -> Recorder | None:
    with _recorders_lock:
        stack = _recorders.get(Path(root).resolve())
        return stack[-1] if stack else None


# --- the local commit list ------------------------------------------------------------------
def _line(manifest: Manifest, prev: str, *, adopted: bool = False) -> bytes:
    doc = manifest.doc()
    doc["prev_blake3"] = prev
    if adopted:
        doc["adopted"] = True
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def link_of(line: bytes) -> str | None:
    """The `prev_blake3` link of one commit-list line (None if unreadable)."""
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    link = doc.get("prev_blake3") if isinstance(doc, dict) else None
    return link if isinstance(link, str) else None


class CommitList:
    """`commits.jsonl` of a local catalog: appended under flock(2), fsynced, never rewritten."""

    def __init__(self, root: Path) -> None:
        self.path = root / COMMIT_LIST
        self._lock_path = root / "commits.lock"

    def exists(self) -> bool:
        return self.path.exists()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def lines(self) -> list[bytes]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        # A torn last line (a crash inside the append) was never a commit.
        return data.splitlines() if data.endswith(b"\n") else data.splitlines()[:-1]

    def commits(self) -> list[Commit]:
        """Every readable commit, in order; a damaged line is skipped here (verify names
        it as a broken chain)."""
        out = []
        for line in self.lines():
            try:
                doc = json.loads(line)
                manifest = Manifest.from_doc(doc, str(self.path))
            except (ValueError, CatalogError):
                continue
            out.append(Commit(manifest, chain.digest(line), bool(doc.get("adopted"))))
        return out

    def append(self, manifest: Manifest, recorder: Recorder | None, location: str,
               *, adopted: bool = False) -> str:
        """Append one commit: the recorder is told first (the audit record is durable
        before the batch is visible), then the line is written and fsynced. Call locked."""
        with contextlib.suppress(FileNotFoundError):
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):  # a torn append that never returned
                os.truncate(self.path, data.rfind(b"\n") + 1)
        lines = self.lines()
        line = _line(manifest, chain.link(lines[-1] if lines else None), adopted=adopted)
        digest = chain.digest(line)
        if recorder is not None:
            recorder(location, manifest, digest)
        try:
            with open(self.path, "ab") as fh:
                fh.write(line + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise CatalogError(f"{self.path}: cannot commit: {exc.strerror}") from exc
        return digest


# --- the audit record of a commit ------------------------------------------------------------
CATALOG_COMMIT = "catalog_commit"  # the audit action


@dataclass(frozen=True, slots=True)
class RecordedCommit:
    """A commit as its audit record states it."""

    batch_id: str
    digest: str
    parts: tuple[tuple[str, int, str], ...]  # (name, size_bytes, sha256)
    seq: int  # the audit record's number


def audit_object(manifest: Manifest) -> str:
    return f"catalog:{manifest.batch_id}"


def audit_reason(location: str, manifest: Manifest, digest: str) -> str:
    """The audit record's text: the catalog, the batch, its digest and every part."""
    return json.dumps({
        "catalog": location, "batch_id": manifest.batch_id, "day": manifest.day,
        "digest": digest,
        "parts": [[p.name, p.size_bytes, p.sha256] for p in manifest.parts],
    }, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def parse_audit_reason(reason: str, seq: int) -> RecordedCommit | None:
    """The commit an audit record states; None if the text is not one."""
    try:
        doc = json.loads(reason)
        return RecordedCommit(
            str(doc["batch_id"]), str(doc["digest"]),
            tuple((str(n), int(size), str(sha)) for n, size, sha in doc["parts"]), seq)
    except (ValueError, KeyError, TypeError):
        return None
