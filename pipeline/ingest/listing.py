"""What is in a dock folder, and opening only what is a regular file.

A folder holds more than recordings: FIFOs (opening one for reading blocks until someone
writes), sockets, devices, symbolic links (dangling, looping, or leading out of the
folder). Listing looks at every entry with `lstat` and opens nothing: a FIFO, socket or
device is `skipped` with what it is; a symbolic link is `skipped` ("not followed") unless
the run follows links, and then every folder is walked once, by (st_dev, st_ino), so a
link back to a parent cannot loop. A link named as a SOURCE is followed (as `find -H`
does): `/mnt/dock` is often one.

`open_regular` opens a listed file with O_NOFOLLOW | O_NONBLOCK (a FIFO swapped in after
listing cannot block the open) and checks with `fstat` that it is still a regular file. The
run then reads the file through that descriptor (`descriptor_path`: `/proc/<pid>/fd/<n>`,
the same open file for this process and its probe workers), so what was checked is what
is read, hashed and probed.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.ingest.names import display_path
from pipeline.ingest.outcome import FAILED, SKIPPED

FOLLOW_HINT = "--follow-symlinks follows links"


@dataclass(frozen=True, slots=True)
class Entry:
    """One thing found below the sources: a regular file to ingest (`status` None), or
    something skipped or failed already at listing, with the reason."""

    path: Path
    root: Path | None  # the folder it was found under (labels may name it relative to it)
    size_bytes: int = 0
    follow: bool = False  # reached through a followed link: open it without O_NOFOLLOW
    status: str | None = None
    reason: str | None = None


def what_it_is(mode: int) -> str | None:
    """None for a regular file, else what the entry is, in words."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def _not_regular(path: Path, root: Path | None, what: str) -> Entry:
    return Entry(path, root, status=SKIPPED,
                 reason=f"{what}, not a regular file: skipped without opening it")


def _link_target(path: Path) -> str:
    try:
        return display_path(os.readlink(path))
    except OSError:
        return "?"


def _link_state(path: Path) -> tuple[os.stat_result | None, str]:
    """The link's target, followed: its stat, or None and why it cannot be reached."""
    try:
        return os.stat(path), ""
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None, "a loop of symbolic links (too many levels)"
        if exc.errno == errno.ENOENT:
            return None, "a dangling link: its target does not exist"
        return None, f"its target cannot be reached: {exc.strerror}"


class _Walk:
    def __init__(self, follow_symlinks: bool) -> None:
        self.follow = follow_symlinks
        self.walked: set[tuple[int, int]] = set()

    def source(self, src: str | os.PathLike[str]) -> Iterator[Entry]:
        p = Path(src)
        try:
            st = os.stat(p)
        except OSError as exc:
            if os.path.islink(p):
                yield Entry(p, p.parent, status=SKIPPED, reason=(
                    f"a symbolic link to {_link_target(p)!r}, {_link_state(p)[1]}"))
            else:
                yield Entry(p, p.parent, status=FAILED,
                            reason=f"cannot read: {exc.strerror or exc}")
            return
        if stat.S_ISDIR(st.st_mode):
            self.walked.add((st.st_dev, st.st_ino))
            yield from self.folder(p, p)
        elif stat.S_ISREG(st.st_mode):
            yield Entry(p, p.parent, st.st_size, follow=True)
        else:
            yield _not_regular(p, p.parent, what_it_is(st.st_mode) or "not a regular file")

    def folder(self, folder: Path, root: Path) -> Iterator[Entry]:
        try:
            with os.scandir(folder) as it:
                items = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield Entry(folder, root, status=FAILED,
                        reason=f"cannot list this folder: {exc.strerror or exc}")
            return
        subfolders: list[Path] = []
        for item in items:
            path = Path(item.path)
            try:
                st = item.stat(follow_symlinks=False)
            except OSError as exc:  # gone since the listing, or unreachable
                yield Entry(path, root, status=FAILED,
                            reason=f"vanished or unreadable after listing: {exc.strerror}")
                continue
            if stat.S_ISLNK(st.st_mode):
                entry = self.link(path, root)
                if isinstance(entry, Path):
                    subfolders.append(entry)
                else:
                    yield entry
            elif stat.S_ISDIR(st.st_mode):
                subfolders.append(path)
            elif stat.S_ISREG(st.st_mode):
                yield Entry(path, root, st.st_size)
            else:
                yield _not_regular(path, root, what_it_is(st.st_mode) or "not a regular file")
        for sub in subfolders:
            try:
                st = os.stat(sub)
            except OSError as exc:
                yield Entry(sub, root, status=FAILED,
                            reason=f"cannot list this folder: {exc.strerror}")
                continue
            key = (st.st_dev, st.st_ino)
            if key in self.walked:
                yield Entry(sub, root, status=SKIPPED, reason=(
                    f"a symbolic link to the folder {_link_target(sub)!r}, which this run "
                    "walks already (a link loop or a second way in): not walked again"))
                continue
            self.walked.add(key)
            yield from self.folder(sub, root)

    def link(self, path: Path, root: Path) -> Entry | Path:
        """A symbolic link: skipped with the reason, or (following) a file or a folder."""
        target = _link_target(path)
        st, trouble = _link_state(path)
        if not self.follow:
            why = f"; {trouble}" if trouble else ""
            return Entry(path, root, status=SKIPPED, reason=(
                f"a symbolic link to {target!r}, not followed ({FOLLOW_HINT}){why}"))
        if st is None:
            return Entry(path, root, status=SKIPPED,
                         reason=f"a symbolic link to {target!r}, {trouble}")
        if stat.S_ISDIR(st.st_mode):
            return path
        if stat.S_ISREG(st.st_mode):
            return Entry(path, root, st.st_size, follow=True)
        what = what_it_is(st.st_mode) or "not a regular file"
        return _not_regular(path, root, f"a symbolic link to {target!r}, {what}")


def list_entries(
    sources: Sequence[str | os.PathLike[str]], *, follow_symlinks: bool = False
) -> Iterator[Entry]:
    """Every entry below the sources, in order (a folder's files by name, then its
    subfolders), each a regular file to ingest or a skipped/failed one with the reason."""
    walk = _Walk(follow_symlinks)
    for src in sources:
        yield from walk.source(src)


class NotRegular(Exception):
    """What `open_regular` found instead of a regular file (the entry is skipped)."""


def open_regular(entry: Entry) -> int:
    """A read-only descriptor of the entry, checked to be a regular file. OSError if it
    cannot be opened (gone, unreadable); NotRegular if something else is there now."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
    if not entry.follow:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(entry.path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not entry.follow:
            raise NotRegular("it became a symbolic link after it was listed: "
                             f"not followed ({FOLLOW_HINT})") from None
        raise
    try:
        what = what_it_is(os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    if what is not None:
        os.close(fd)
        raise NotRegular(f"it became {what} after it was listed: skipped without reading it")
    return fd


def descriptor_path(fd: int) -> str | None:
    """A path that opens the same file as `fd`, for this process and its children (Linux
    /proc); None where there is none."""
    path = f"/proc/{os.getpid()}/fd/{fd}"
    return path if os.path.exists(path) else None
