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


def read_folder(root: str | os.PathLike) -> list[SourceFile]:
    """Every markdown file under `root` (symlinks are reported, never followed)."""
    root_path = Path(root)
    if not root_path.is_dir():
        raise InvalidInput(f"{root} is not a folder.")
    max_file, max_total, max_files = _limits()
    files: list[SourceFile] = []
    total = not_read = 0
    for dirpath, dirnames, filenames in os.walk(root_path, followlinks=False):
        rel_dir = Path(dirpath).relative_to(root_path).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        for name in sorted(dirnames):
            full = Path(dirpath) / name
            if full.is_symlink():
                files.append(
                    SourceFile(posixpath.join(rel_dir, name), problem="symbolic link, not followed")
                )
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and not (Path(dirpath) / d).is_symlink()
        )
        for name in sorted(filenames):
            rel = posixpath.join(rel_dir, name)
            full = Path(dirpath) / name
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                files.append(SourceFile(rel, problem="symbolic link, not followed"))
                continue
            if not is_markdown(name):
                continue
            if not stat.S_ISREG(st.st_mode):
                files.append(SourceFile(rel, problem="not a regular file"))
                continue
            if len(files) >= max_files:
                not_read += 1
                continue
            if st.st_size > max_file:
                files.append(SourceFile(rel, problem=f"larger than {max_file:,} bytes"))
                continue
            if total + st.st_size > max_total:
                files.append(SourceFile(rel, problem=f"import larger than {max_total:,} bytes"))
                continue
            with open(full, "rb") as handle:
                data = handle.read(max_file + 1)
            if len(data) > max_file:
                files.append(SourceFile(rel, problem=f"larger than {max_file:,} bytes"))
                continue
            total += len(data)
            files.append(SourceFile(rel, data=data))
    if not_read:
        files.append(_not_read(not_read, max_files))
    dates = commit_dates(root_path)
    for source in files:
        source.committed_at = dates.get(source.path)
    return files


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
    max_file, max_total, max_files = _limits()
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
    files: list[SourceFile] = []
    total = not_read = 0
    with archive:
        for info in archive.infolist():
            name = info.filename
            if info.is_dir():
                continue
            problem = _unsafe_name(name)
            clean = posixpath.normpath(name.replace("\\", "/")).lstrip("/")
            if problem:
                files.append(SourceFile(name, problem=problem))
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                files.append(SourceFile(clean, problem="symbolic link, not followed"))
                continue
            if not is_markdown(clean) or any(p.startswith(".") for p in clean.split("/")[:-1]):
                continue
            if clean.startswith("__MACOSX/"):
                continue
            if len(files) >= max_files:
                not_read += 1
                continue
            if info.file_size > max_file:
                files.append(SourceFile(clean, problem=f"larger than {max_file:,} bytes"))
                continue
            if total + info.file_size > max_total:
                files.append(SourceFile(clean, problem=f"import larger than {max_total:,} bytes"))
                continue
            try:
                with archive.open(info) as member:
                    # Read one byte past the limit: a member whose header lies about its size
                    # (a zip bomb) is caught here, not after filling memory.
                    content = member.read(max_file + 1)
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
                files.append(SourceFile(clean, problem=f"cannot be unpacked ({exc})"))
                continue
            if len(content) > max_file:
                files.append(SourceFile(clean, problem=f"larger than {max_file:,} bytes"))
                continue
            total += len(content)
            files.append(SourceFile(clean, data=content))
    files = _strip_common_root(files)
    if not_read:
        files.append(_not_read(not_read, max_files))
    return files


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
