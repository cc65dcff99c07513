"""Where the markdown comes from: a folder on disk or an uploaded zip.

Both produce the same list of SourceFile: a safe relative path plus its bytes, or the reason it
cannot be read. Nothing here touches the database, and nothing is extracted to disk: zip members
are read in memory, so a hostile name can never write outside anywhere.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import posixpath
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from apps.core.errors import InvalidInput

MARKDOWN_SUFFIXES = (".md", ".markdown")
log = logging.getLogger(__name__)


@dataclass
class SourceFile:
    path: str  # relative, "/"-separated, never absolute, never containing ".."
    data: bytes | None = None
    problem: str = ""  # set when the file is skipped before parsing
    committed_at: dt.datetime | None = None  # its last commit, when the folder is a checkout


def is_markdown(path: str) -> bool:
    return path.lower().endswith(MARKDOWN_SUFFIXES)


def _limits() -> tuple[int, int, int]:
    return (
        settings.CONTEXTKB_IMPORT_MAX_FILE_BYTES,
        settings.CONTEXTKB_IMPORT_MAX_TOTAL_BYTES,
        settings.CONTEXTKB_IMPORT_MAX_FILES,
    )


def max_zip_entries() -> int:
    """Entries (of any kind) a zip may hold: room for images and other files beside the
    markdown, but not the hundreds of thousands a small zip can list (each costs time to read)."""
    return 4 * settings.CONTEXTKB_IMPORT_MAX_FILES


def _not_read(count: int, max_files: int) -> SourceFile:
    """One line for every file past the limit (a zip can name hundreds of thousands)."""
    return SourceFile(
        f"({count:,} more file{'s' if count != 1 else ''})",
        problem=f"more than {max_files:,} files; not read",
    )


class _Budget:
    """The count and size limits of one import, applied file by file."""

    def __init__(self) -> None:
        self.max_file, self.max_total, self.max_files = _limits()
        self.total = self.not_read = 0

    def full(self, files: list[SourceFile]) -> bool:
        """Whether the file count is reached (then the file is only counted, for one line)."""
        if len(files) < self.max_files:
            return False
        self.not_read += 1
        return True

    def problem(self, size: int) -> str:
        """Why a file of `size` bytes (as declared) is not read, or ''."""
        if size > self.max_file:
            return f"larger than {self.max_file:,} bytes"
        if self.total + size > self.max_total:
            return f"import larger than {self.max_total:,} bytes"
        return ""

    def take(self, path: str, data: bytes) -> SourceFile:
        """The file as read (read one byte past the limit: a size that lied is caught here)."""
        if len(data) > self.max_file:
            return SourceFile(path, problem=f"larger than {self.max_file:,} bytes")
        self.total += len(data)
        return SourceFile(path, data=data)

    def finish(self, files: list[SourceFile]) -> list[SourceFile]:
        if self.not_read:
            files.append(_not_read(self.not_read, self.max_files))
        return files


def read_folder(root: str | os.PathLike) -> list[SourceFile]:
    """Every markdown file under `root` (symlinks are reported, never followed)."""
    root_path = Path(root)
    if not root_path.is_dir():
        raise InvalidInput(f"{root} is not a folder.")
    budget = _Budget()
    files: list[SourceFile] = []
    for dirpath, dirnames, filenames in os.walk(root_path, followlinks=False):
        rel_dir = Path(dirpath).relative_to(root_path).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        for name in sorted(dirnames):
            if (Path(dirpath) / name).is_symlink():
                files.append(
                    SourceFile(posixpath.join(rel_dir, name), problem="symbolic link, not followed")
                )
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and not (Path(dirpath) / d).is_symlink()
        )
        for name in sorted(filenames):
            source = _folder_file(
                Path(dirpath) / name, posixpath.join(rel_dir, name), budget, files
            )
            if source is not None:
                files.append(source)
    budget.finish(files)
    dates = commit_dates(root_path)
    for source in files:
        source.committed_at = dates.get(source.path)
    return files


def _folder_file(full: Path, rel: str, budget: _Budget, files: list[SourceFile]):
    """One file of a folder as read (or with why not), or None when it is not for import."""
    st = full.lstat()
    if stat.S_ISLNK(st.st_mode):
        return SourceFile(rel, problem="symbolic link, not followed")
    if not is_markdown(rel):
        return None
    if not stat.S_ISREG(st.st_mode):
        return SourceFile(rel, problem="not a regular file")
    if budget.full(files):
        return None
    problem = budget.problem(st.st_size)
    if problem:
        return SourceFile(rel, problem=problem)
    with open(full, "rb") as handle:
        return budget.take(rel, handle.read(budget.max_file + 1))


def commit_dates(root: Path) -> dict[str, dt.datetime]:
    """The last commit date of every file under `root`, when it is inside a git checkout (one
    `git log` for the whole folder; {} when it is not a checkout or git is missing)."""
    from apps.interchange import gitcli

    try:
        result = gitcli.run(
            ["log", "--format=%x00%cI", "--name-only", "--relative", "--", "."],
            cwd=root,
            check=False,
        )
    except gitcli.GitError as exc:
        log.info("no commit dates for %s: %s", root, exc.message)
        return {}
    if result.returncode != 0:
        return {}
    dates: dict[str, dt.datetime] = {}
    when: dt.datetime | None = None
    for line in result.stdout.splitlines():
        if line.startswith("\x00"):
            try:
                when = dt.datetime.fromisoformat(line[1:].strip())
            except ValueError:
                when = None
        elif line and when is not None:
            # Newest commits come first: the first date seen for a path is its last change.
            dates.setdefault(line, when)
    return dates


def _unsafe_name(name: str) -> str:
    """Why a zip member name is refused ('' when it is safe)."""
    if "\x00" in name:
        return "file name contains a NUL character"
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path in the zip"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "path escapes the folder (zip-slip)"
    return ""


def _declared_entries(buffer) -> int | None:
    """The entry count the zip's end record declares (None when it cannot be read), found
    without reading the central directory: a 20 MB zip can list 400,000 entries."""
    buffer.seek(0, io.SEEK_END)
    size = buffer.tell()
    length = min(size, 22 + 65_535)  # the end record, plus the longest comment it may carry
    buffer.seek(size - length)
    tail = buffer.read(length)
    buffer.seek(0)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return None
    count = int.from_bytes(tail[at + 10 : at + 12], "little")
    if count == 0xFFFF:  # zip64: the real count is in the zip64 end record
        locator = tail.rfind(b"PK\x06\x07", 0, at)
        if locator < 0:
            return None
        buffer.seek(int.from_bytes(tail[locator + 8 : locator + 16], "little"))
        record = buffer.read(56)
        buffer.seek(0)
        if record[:4] != b"PK\x06\x06" or len(record) < 40:
            return None
        count = int.from_bytes(record[32:40], "little")
    return count


def _too_many(count: int) -> InvalidInput:
    limit = max_zip_entries()
    return InvalidInput(
        f"The zip lists {count:,} entries; at most {limit:,} are accepted. Zip only the folder "
        "of decision records.",
        details={"file": [f"More than {limit:,} entries."]},
    )


def check_zip(data: bytes) -> None:
    """Refuse, before anything is stored or queued, what read_zip would refuse as a whole."""
    buffer = io.BytesIO(data)
    if not zipfile.is_zipfile(buffer):
        raise InvalidInput("That is not a zip file.", details={"file": ["Not a zip file."]})
    count = _declared_entries(buffer)
    if count is not None and count > max_zip_entries():
        raise _too_many(count)


def read_zip(data: bytes | io.BufferedIOBase) -> list[SourceFile]:
    """Every markdown member of a zip, read in memory with size limits."""
    buffer = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    declared = _declared_entries(buffer)
    if declared is not None and declared > max_zip_entries():
        raise _too_many(declared)
    try:
        archive = zipfile.ZipFile(buffer)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InvalidInput(f"That is not a readable zip file ({exc}).") from None
    if len(archive.infolist()) > max_zip_entries():
        # The end record understated it: the central directory says more.
        archive.close()
        raise _too_many(len(archive.infolist()))
    budget = _Budget()
    files: list[SourceFile] = []
    with archive:
        for info in archive.infolist():
            if not info.is_dir():
                source = _zip_member(archive, info, budget, files)
                if source is not None:
                    files.append(source)
    return budget.finish(_strip_common_root(files))


def _zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget, files):
    """One member as read (or with why not), or None when it is not for import."""
    name = info.filename
    problem = _unsafe_name(name)
    if problem:
        return SourceFile(name, problem=problem)
    clean = posixpath.normpath(name.replace("\\", "/")).lstrip("/")
    if stat.S_ISLNK(info.external_attr >> 16):
        return SourceFile(clean, problem="symbolic link, not followed")
    if not is_markdown(clean) or any(p.startswith(".") for p in clean.split("/")[:-1]):
        return None
    if clean.startswith("__MACOSX/") or budget.full(files):
        return None
    problem = budget.problem(info.file_size)
    if problem:
        return SourceFile(clean, problem=problem)
    try:
        with archive.open(info) as member:
            # One byte past the limit: a member whose header lies about its size (a zip bomb)
            # is caught here, not after filling memory.
            return budget.take(clean, member.read(budget.max_file + 1))
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        return SourceFile(clean, problem=f"cannot be unpacked ({exc})")


def _strip_common_root(files: list[SourceFile]) -> list[SourceFile]:
    """A zip of `docs/adr/` usually holds `adr/…`: drop one folder that every file shares, so
    zipping a folder and importing the folder give the same source paths."""
    readable = [f for f in files if not f.problem or "/" in f.path]
    if not readable:
        return files
    firsts = {f.path.split("/", 1)[0] for f in readable}
    if len(firsts) != 1 or not all("/" in f.path for f in readable):
        return files
    prefix = firsts.pop() + "/"
    return [
        SourceFile(f.path[len(prefix) :], f.data, f.problem) if f.path.startswith(prefix) else f
        for f in files
    ]
