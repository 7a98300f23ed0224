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
import mmap
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.errors import CatalogError
from pipeline.integrity import chain

MANIFEST_FORMAT = 1
COMPACTION_FORMAT = 2  # an older release skips (local) or refuses (S3) such a manifest
COMMIT_LIST = "commits.jsonl"
BATCH = "batch"
COMPACTION = "compaction"
_COMPACTION_MARK = b'"kind":"compaction"'  # how a compaction's line is spelled (sort_keys)
_TAIL_BLOCK = 1 << 16


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
    """What one commit makes visible. A batch (`kind` "batch") adds its `parts`.

    A compaction (`kind` "compaction", `pipeline.catalog.compact`) replaces what the views
    read: after it they read its `parts` (the merged parts it wrote) and `carried` (parts of
    earlier commits read as they are), and nothing committed before it, plus whatever is
    committed after it. `base` is the digest of the last commit it read (local), `covers`
    the manifests whose parts it replaces (S3, where commits have no order), `folded` the
    parts (of those it reads) that its derived parts were made from
    (schemas.records.DERIVED_TABLES)."""

    batch_id: str
    day: str
    parts: tuple[PartEntry, ...]
    kind: str = BATCH
    carried: tuple[PartEntry, ...] = ()
    base: str | None = None
    covers: tuple[str, ...] = ()
    folded: tuple[str, ...] = ()  # the parts its derived parts were folded from

    @property
    def is_compaction(self) -> bool:
        return self.kind == COMPACTION

    def doc(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "format": MANIFEST_FORMAT, "batch_id": self.batch_id, "day": self.day,
            "parts": [asdict(p) for p in self.parts]}
        if self.is_compaction:
            doc.update(format=COMPACTION_FORMAT, kind=COMPACTION, base=self.base,
                       carried=[asdict(p) for p in self.carried], covers=list(self.covers))
            if self.folded:
                doc["folded"] = list(self.folded)
        return doc

    def to_json(self) -> bytes:
        return json.dumps(self.doc(), indent=1, sort_keys=True).encode()

    @classmethod
    def from_doc(cls, doc: object, where: str) -> Manifest:
        try:
            if not isinstance(doc, dict):
                raise TypeError("not an object")
            fmt = doc.get("format")
            if fmt == COMPACTION_FORMAT and doc.get("kind") == COMPACTION:
                return cls(
                    batch_id=str(doc["batch_id"]), day=str(doc["day"]),
                    parts=tuple(PartEntry(**p) for p in doc["parts"]), kind=COMPACTION,
                    carried=tuple(PartEntry(**p) for p in doc["carried"]),
                    base=None if doc.get("base") is None else str(doc["base"]),
                    covers=tuple(str(n) for n in doc.get("covers", ())),
                    folded=tuple(str(n) for n in doc.get("folded", ())),
                )
            if fmt != MANIFEST_FORMAT:
                raise CatalogError(f"{where}: manifest format {fmt!r} unknown")
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


def fold(commits: Iterable[Commit]) -> list[PartEntry]:
    """The parts the views read after `commits`, in commit order: a batch adds its parts, a
    compaction replaces everything before it with its own and its carried parts. Pure."""
    state: dict[str, PartEntry] = {}
    for c in commits:
        if c.manifest.is_compaction:
            state = {p.name: p for p in (*c.manifest.parts, *c.manifest.carried)}
        else:
            state.update((p.name, p) for p in c.manifest.parts)
    return list(state.values())


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
    """`commits.jsonl` of a local catalog: appended under flock(2), fsynced, never rewritten.

    A year of nightly batches is some 60,000 lines (about 1.2 KB each), so nothing on the
    commit path reads the whole file: an append reads only its last line, and the views
    read from the last compaction on (`current`), found by searching the file backwards
    and kept in memory, then only what was appended since. `lines()` and `commits()` (for
    verify) read it all."""

    def __init__(self, root: Path) -> None:
        self.path = root / COMMIT_LIST
        self._lock_path = root / "commits.lock"
        self._seen: tuple[int, int, int] | None = None  # (dev, inode, end of the last line)
        self._current: list[Commit] = []

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
        return _parse(self.lines(), str(self.path))

    def current(self) -> list[Commit]:
        """The last compaction (if any) and every commit after it: what the views read."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            self._seen, self._current = None, []
            return []
        try:
            st = os.fstat(fd)
            seen = self._seen
            if seen is not None and seen[:2] == (st.st_dev, st.st_ino) and seen[2] <= st.st_size:
                start = seen[2]  # append-only: only what came since is new
            else:
                start, self._current = _last_compaction_start(fd, st.st_size), []
            data = os.pread(fd, st.st_size - start, start)
        finally:
            os.close(fd)
        end = data.rfind(b"\n") + 1  # a torn last line was never a commit
        for commit in _parse(data[:end].splitlines(), str(self.path)):
            if commit.manifest.is_compaction:
                self._current = []
            self._current.append(commit)
        self._seen = (st.st_dev, st.st_ino, start + end)
        return list(self._current)

    def _last_line(self) -> tuple[int, bytes | None]:
        """(where the last complete line ends, that line) read from the file's end."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return 0, None
        try:
            return _last_line_of(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)

    def append(self, manifest: Manifest, recorder: Recorder | None, location: str,
               *, adopted: bool = False) -> str:
        """Append one commit: the recorder is told first (the audit record is durable
        before the batch is visible), then the line is written and fsynced. Call locked."""
        end, last = self._last_line()
        with contextlib.suppress(FileNotFoundError):
            if os.stat(self.path).st_size != end:  # a torn append that never returned
                os.truncate(self.path, end)
        line = _line(manifest, chain.link(last), adopted=adopted)
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


def _parse(lines: list[bytes], where: str) -> list[Commit]:
    out = []
    for line in lines:
        try:
            doc = json.loads(line)
            manifest = Manifest.from_doc(doc, where)
        except (ValueError, CatalogError):
            continue
        out.append(Commit(manifest, chain.digest(line), bool(doc.get("adopted"))))
    return out


def _last_line_of(fd: int, size: int) -> tuple[int, bytes | None]:
    """(where the last complete line ends, that line without its newline), reading blocks
    backwards from the end; (0, None) when there is no complete line."""
    pos, data = size, b""
    while pos > 0:
        step = min(_TAIL_BLOCK, pos)
        pos -= step
        data = os.pread(fd, step, pos) + data
        end = data.rfind(b"\n")
        if end < 0:
            continue
        start = data.rfind(b"\n", 0, end) + 1
        if start > 0 or pos == 0:
            return pos + end + 1, data[start:end]
    return 0, None


def _last_compaction_start(fd: int, size: int) -> int:
    """Where the last compaction's line starts (0 when there is none): the file searched
    backwards (mapped, not read into memory), each candidate line checked."""
    if size == 0:
        return 0
    with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as mm:
        end = size
        while (hit := mm.rfind(_COMPACTION_MARK, 0, end)) >= 0:
            start = mm.rfind(b"\n", 0, hit) + 1
            stop = mm.find(b"\n", hit)
            if stop >= 0:
                with contextlib.suppress(ValueError):
                    doc = json.loads(mm[start:stop])
                    if isinstance(doc, dict) and doc.get("kind") == COMPACTION:
                        return start
            end = hit
    return 0


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
    """The audit record's text: the catalog, the batch, its digest and every part it
    wrote; for a compaction also the parts it keeps reading (`carried`) and what it
    replaces (the last commit it read, or how many manifests it covers)."""
    doc: dict[str, object] = {
        "catalog": location, "batch_id": manifest.batch_id, "day": manifest.day,
        "digest": digest,
        "parts": [[p.name, p.size_bytes, p.sha256] for p in manifest.parts],
    }
    if manifest.is_compaction:
        doc.update(kind=COMPACTION, base=manifest.base, covers=len(manifest.covers),
                   carried=[p.name for p in manifest.carried])
        if manifest.folded:
            doc["folded"] = list(manifest.folded)
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def parse_audit_reason(reason: str, seq: int) -> RecordedCommit | None:
    """The commit an audit record states; None if the text is not one."""
    try:
        doc = json.loads(reason)
        return RecordedCommit(
            str(doc["batch_id"]), str(doc["digest"]),
            tuple((str(n), int(size), str(sha)) for n, size, sha in doc["parts"]), seq)
    except (ValueError, KeyError, TypeError):
        return None
