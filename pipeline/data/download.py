"""The project's one HTTP downloader: resumable, retried, checksummed and atomic.

Every raw dataset (WeatherBench netCDF zips, TaxiBJ, KTH, KITTI...) comes through ``download``.
``record_manifest`` keeps the provenance (url, size, sha256, time) that the Zarr store records,
and ``extract`` unpacks archives without ever leaving a half-written folder behind, nor a member
outside it, nor more than a bounded size (zip bombs).

Verification: a file is checked against its pinned sha256 (a source setting) or else against
the committed ``checksums.json`` (url -> sha256, size), which records each url at its first
download and verifies it on every later one. A file with nothing to check against yet must at
least be what it claims: an archive must open, an HTML page (an error or login page served with
status 200) is refused, and so is a body sent without Content-Length unless an archive check or
checksum proves it whole. A cached file failing its check is fetched again.
"""
from __future__ import annotations

import fcntl
import hashlib
import http.client
import json
import logging
import os
import posixpath
import re
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from pipeline import __version__
from pipeline.core.errors import ConfigError, DataError
from pipeline.core.outputs import atomic, clean_stale, write_text_atomic

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
_SCHEMES = ("http://", "https://", "file://")
# 4xx codes that mean "try again later" rather than "this request is wrong".
_TRANSIENT_4XX = frozenset({408, 429})
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")
_MANIFEST_KEYS = ("url", "file", "size", "sha256", "downloaded_at")
CHECKSUMS = Path(__file__).with_name("checksums.json")
CHECKSUMS_ENV = "SVQ_CHECKSUMS"  # another checksums file (tests: never the committed one)
_ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
# Bounded extraction (zip bombs): an archive may unpack to MAX_RATIO times its own size (but always
# to RATIO_FLOOR, for small archives of sparse data) and never past MAX_UNPACKED_BYTES. Real data
# (netCDF floats, video, images) deflate a few times, not hundreds.
MAX_UNPACKED_BYTES = 64 * 2**30
MAX_RATIO = 200
RATIO_FLOOR = 16 * 2**20


class ChecksumError(DataError):
    """A downloaded file's sha256 differs from the expected one."""


class _Transient(Exception):
    """A failure worth retrying (network cut, 5xx...); the message says what happened."""


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    sha256: str
    size: int
    url: str
    resumed: bool = False  # the final file was completed from a partial download
    cached: bool = False  # the destination was already there and valid: nothing was fetched


def sha256_file(path: Path | str, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so multi-GB archives do not fill memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _check_args(url, sha256, retries, backoff, timeout, chunk_size) -> None:
    if not isinstance(url, str) or not url.startswith(_SCHEMES):
        raise ConfigError(f"download url must be a string starting with one of {_SCHEMES}, got {url!r}")
    if sha256 is not None and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
        raise ConfigError(f"sha256 for {url} must be 64 hex digits, got {sha256!r}")
    if not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"retries must be an integer >= 0, got {retries!r}")
    if backoff < 0:
        raise ConfigError(f"backoff must be >= 0 seconds, got {backoff!r}")
    if timeout <= 0:
        raise ConfigError(f"timeout must be > 0 seconds, got {timeout!r}")
    if not isinstance(chunk_size, int) or chunk_size <= 0:
        raise ConfigError(f"chunk_size must be a positive integer, got {chunk_size!r}")


def download(url: str, dest: Path, *, sha256: str | None = None, retries: int = 5,
             backoff: float = 1.0, timeout: float = 60.0, chunk_size: int = 1 << 20,
             progress: bool = True) -> DownloadResult:
    """Fetch ``url`` into ``dest``, resuming and retrying, and verify it.

    Bytes go to ``dest`` + ".part"; ``dest`` appears (by rename) only once complete and, when
    ``sha256`` is given, matching it. A ``.part`` left by a cut connection or an earlier run is
    resumed with a Range request. Network cuts, timeouts, 5xx, 408 and 429 are retried
    ``retries`` times with exponential backoff (``backoff * 2**attempt`` seconds); other 4xx fail
    at once. On giving up the ``.part`` is kept so the next run resumes it.
    """
    _check_args(url, sha256, retries, backoff, timeout, chunk_size)
    dest = Path(dest)
    expected = sha256.lower() if sha256 else known_checksum(url)

    if dest.is_file():
        actual = sha256_file(dest)
        problem = _content_problem(dest, dest.name) if expected is None else None
        if problem is None and expected in (None, actual):
            if expected is None:
                remember_checksum(url, actual, dest.stat().st_size)
            return DownloadResult(dest, actual, dest.stat().st_size, url, cached=True)
        log.warning("%s exists but %s: downloading it again", dest,
                    problem or f"has sha256 {actual}, not {expected}")
    elif dest.exists():
        raise DataError(f"download destination {dest} exists and is not a regular file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + ".part")

    resumed, unframed = _fetch_with_retries(url, part, dest.name, retries, backoff, timeout, chunk_size,
                                            progress)
    actual = sha256_file(part)
    if expected is not None and actual != expected and resumed:
        # A stale .part (e.g. from a different upstream version) poisons the resumed file:
        # give it one clean download from byte zero before calling the data bad.
        log.warning("%s resumed from a partial file has sha256 %s, not %s: downloading it whole",
                    dest.name, actual, expected)
        part.unlink()
        resumed, unframed = _fetch_with_retries(url, part, dest.name, retries, backoff, timeout,
                                                chunk_size, progress)
        actual = sha256_file(part)
    if expected is not None and actual != expected:
        part.unlink()
        raise ChecksumError(f"{dest} downloaded from {url} has sha256 {actual}, expected {expected}; "
                            f"the download was deleted")
    size = part.stat().st_size
    if expected is None:
        problem = _content_problem(part, dest.name)
        if problem is None and unframed and not dest.name.endswith(_ARCHIVES):
            problem = ("the server sent no Content-Length, so a body cut short cannot be told from a "
                       "complete one (pin its sha256 to accept it)")
        if problem is not None:
            part.unlink()
            raise DataError(f"{dest} downloaded from {url}: {problem}; the download was deleted")
        remember_checksum(url, actual, size)
    os.replace(part, dest)
    return DownloadResult(dest, actual, size, url, resumed=resumed, cached=False)


def checksums_path() -> Path:
    return Path(os.environ.get(CHECKSUMS_ENV) or CHECKSUMS)


def known_checksum(url: str) -> str | None:
    """The sha256 recorded for ``url`` at its first download, if any."""
    path = checksums_path()
    if not path.exists():
        return None
    try:
        entry = json.loads(path.read_text()).get(url)
    except (ValueError, AttributeError) as exc:
        raise DataError(f"{path}: not a valid checksums file ({exc})") from None
    return entry["sha256"] if isinstance(entry, dict) and "sha256" in entry else None


def remember_checksum(url: str, sha256: str, size: int) -> None:
    """Record ``url``'s checksum on first download (commit the file: later downloads verify it)."""
    if not url.startswith(("http://", "https://")):
        return  # a local file:// copy is not a published file
    path = checksums_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # download stages of several datasets may run at once
        data = json.loads(path.read_text()) if path.exists() else {}
        if url in data:
            return
        data[url] = {"sha256": sha256, "size": int(size), "recorded_at": _utc_iso()}
        write_text_atomic(path, json.dumps(dict(sorted(data.items())), indent=2) + "\n", fsync=True)


def _content_problem(path: Path, name: str) -> str | None:
    """Why ``path`` (to be called ``name``) is not the file it claims to be, or None."""
    with open(path, "rb") as f:
        head = f.read(1024).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) and not name.endswith((".html", ".htm")):
        return "it is an HTML page, not the file (an error or login page served with status 200?)"
    if name.endswith(".zip"):
        try:
            with zipfile.ZipFile(path) as zf:
                zf.infolist()
        except (zipfile.BadZipFile, OSError) as exc:
            return f"it does not open as a zip archive (cut short, or not the file?): {exc}"
    elif name.endswith(_ARCHIVES):
        try:
            with tarfile.open(path, "r:*") as tf:
                for _ in tf:  # reads to the end: a cut-short archive fails here
                    pass
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            return f"it does not open as a tar archive (cut short, or not the file?): {exc}"
    return None


def _fetch_with_retries(url, part, name, retries, backoff, timeout, chunk_size,
                        progress) -> tuple[bool, bool]:
    for attempt in range(retries + 1):
        try:
            return _fetch(url, part, name, timeout, chunk_size, progress)
        except _Transient as exc:
            if attempt == retries:
                kept = part.stat().st_size if part.exists() else 0
                raise DataError(f"download of {url} failed after {retries + 1} attempt(s), last: {exc}; "
                                f"{kept} bytes kept in {part} for the next run to resume") from exc
            delay = backoff * 2 ** attempt
            log.warning("download of %s: %s; retry %d/%d in %.2g s", url, exc, attempt + 1, retries, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")  # the loop either returns or raises


def _fetch(url: str, part: Path, name: str, timeout: float, chunk_size: int,
           progress: bool) -> tuple[bool, bool]:
    """One attempt: append to (or restart) ``part``. Returns whether bytes were appended to an
    existing partial file, and whether the body came unframed (neither Content-Length nor chunked
    encoding: its end cannot be told from a cut). Raises ``_Transient`` for anything worth retrying."""
    offset = part.stat().st_size if part.exists() else 0
    # identity: a compressed transfer would make byte ranges refer to the wrong stream
    headers = {"User-Agent": f"svq-repro/{__version__}", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        with exc:
            code, reason = exc.code, exc.reason
            content_range = exc.headers.get("Content-Range", "") if exc.headers else ""
        if code == 416 and offset:
            m = _UNSATISFIED_RANGE.match(content_range)
            if m and int(m.group(1)) == offset:
                return True, False  # the .part already holds the whole file (cut before the rename)
            part.unlink()
            raise _Transient(f"HTTP 416 for bytes={offset}- (Content-Range {content_range!r}); "
                             f"restarting from zero") from exc
        if code >= 500 or code in _TRANSIENT_4XX:
            raise _Transient(f"HTTP {code} {reason}") from exc
        raise DataError(f"download of {url} failed: HTTP {code} {reason} "
                        f"(client error, not retried)") from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from exc

    with resp:
        status = resp.status or 200  # file:// responses carry no status
        length = resp.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        unframed = length is None and not getattr(resp, "chunked", False)
        if status == 206 and offset:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != offset:
                part.unlink()
                raise _Transient(f"server answered Range bytes={offset}- with Content-Range "
                                 f"{resp.headers.get('Content-Range')!r}; restarting from zero")
            total = int(m.group(3)) if m.group(3) != "*" else None
            mode, appended = "ab", True
        elif status == 200:
            if offset:
                log.info("%s: server ignored the Range request, restarting from zero", url)
            offset, mode, appended = 0, "wb", False
            total = length
        else:
            raise _Transient(f"unexpected HTTP {status} {resp.reason}")

        received = 0
        bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=name, disable=not progress)
        try:
            with open(part, mode) as f:
                while True:
                    try:
                        chunk = resp.read(chunk_size)
                    except (http.client.HTTPException, OSError) as exc:
                        raise _Transient(f"connection broke after {offset + received} bytes: "
                                         f"{type(exc).__name__}: {exc}") from exc
                    if not chunk:
                        break
                    f.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        finally:
            bar.close()
    # http.client returns a short body silently when the peer closes early
    if length is not None and received != length:
        raise _Transient(f"connection closed after {offset + received} bytes, "
                         f"{length - received} short of Content-Length")
    return appended, unframed


def _utc_iso(ts: float | None = None) -> str:
    moment = datetime.now(timezone.utc) if ts is None else datetime.fromtimestamp(ts, timezone.utc)
    return moment.isoformat(timespec="seconds")


def load_manifest(path: Path) -> dict:
    """Read a manifest written by ``record_manifest``: ``{"version": 1, "files": {file: entry}}``
    where each entry holds url, file, size, sha256 and downloaded_at (ISO 8601, UTC)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"download manifest {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"download manifest {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise DataError(f"download manifest {path} must be an object with a 'files' object")
    for key, entry in data["files"].items():
        missing = [k for k in _MANIFEST_KEYS if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise DataError(f"download manifest {path}: entry {key!r} lacks {missing}")
    return data


def record_manifest(results: list[DownloadResult], manifest: Path) -> None:
    """Add or update ``results`` in the JSON manifest, written atomically.

    Files are keyed by their path relative to the manifest's folder (just the file name when
    the manifest sits beside them), so the manifest stays valid wherever the tree is checked out.
    A cached result keeps its earlier ``downloaded_at`` when its checksum is unchanged; with no
    earlier entry, the file's modification time stands in for it.
    """
    manifest = Path(manifest)
    data = load_manifest(manifest) if manifest.exists() else {"version": MANIFEST_VERSION, "files": {}}
    files = data["files"]
    now = _utc_iso()
    base = manifest.parent.resolve()
    for r in results:
        key = Path(os.path.relpath(Path(r.path).resolve(), base)).as_posix()
        old = files.get(key)
        if r.cached and old and old.get("sha256") == r.sha256:
            at = old["downloaded_at"]
        elif r.cached:
            at = _utc_iso(Path(r.path).stat().st_mtime)
        else:
            at = now
        files[key] = {"url": r.url, "file": key, "size": int(r.size), "sha256": r.sha256,
                      "downloaded_at": at}
    data["files"] = dict(sorted(files.items()))
    write_text_atomic(manifest, json.dumps(data, indent=2) + "\n", fsync=True)


def _check_member(name: str, archive: Path, dest_dir: Path) -> None:
    norm = posixpath.normpath(name.replace("\\", "/"))
    drive = ":" in norm.split("/", 1)[0]
    if norm.startswith("/") or drive or norm == ".." or norm.startswith("../"):
        raise DataError(f"archive {archive}: member {name!r} would be written outside {dest_dir}; "
                        f"refusing to extract it")


def _limit(archive: Path, max_bytes: int, max_ratio: float) -> tuple[int, str]:
    size = archive.stat().st_size
    limit = min(max_bytes, max(int(max_ratio * size), RATIO_FLOOR))
    return limit, f"{max_ratio:g} x the archive's {size:,} bytes, at most {max_bytes:,}"


def _count(total: int, name: str, size: int, archive: Path, limit: tuple[int, str]) -> int:
    """``total + size``, refused once past the limit: before a byte of ``name`` is unpacked."""
    total += size
    if total > limit[0]:
        raise DataError(f"archive {archive}: member {name!r} brings the unpacked size to {total:,} bytes, "
                        f"over the limit of {limit[0]:,} ({limit[1]}); refusing to extract it")
    return total


def _extract_zip(archive: Path, into: Path, dest_dir: Path, limit: tuple[int, str]) -> None:
    with zipfile.ZipFile(archive) as zf:
        total = 0
        for info in zf.infolist():
            _check_member(info.filename, archive, dest_dir)
            total = _count(total, info.filename, info.file_size, archive, limit)
        for info in zf.infolist():
            try:  # zipfile stops at the declared size and then checks the CRC-32: a member that
                zf.extract(info, into)  # decompresses to more (or other) bytes fails here
            except zipfile.BadZipFile as exc:
                raise DataError(f"archive {archive}: member {info.filename!r} does not unpack to its declared "
                                f"{info.file_size:,} bytes and CRC-32 ({exc})") from None


def _extract_tar(archive: Path, into: Path, dest_dir: Path, limit: tuple[int, str]) -> None:
    with tarfile.open(archive, "r:*") as tf:
        total = 0
        for member in tf:  # header by header: refused at the first member past the limit
            _check_member(member.name, archive, dest_dir)
            # a tar member is exactly its header's size; links and folders hold no data
            total = _count(total, member.name, member.size if member.isreg() else 0, archive, limit)
        try:
            # the "data" filter also refuses links pointing outside, devices and setuid bits
            tf.extractall(into, filter="data")
        except tarfile.FilterError as exc:
            raise DataError(f"archive {archive}: member {exc.tarinfo.name!r} refused: {exc}") from exc


def extract(archive: Path, dest_dir: Path, *, overwrite: bool = False, max_bytes: int = MAX_UNPACKED_BYTES,
            max_ratio: float = MAX_RATIO) -> list[Path]:
    """Unpack a .zip / .tar / .tar.gz (.bz2, .xz) into ``dest_dir``; return the files, sorted.

    The format is sniffed from the content, not the name. Extraction goes to a temporary sibling
    folder renamed into place, so a failure leaves nothing. An existing non-empty ``dest_dir`` is
    an error unless ``overwrite``, which swaps the new content in and then deletes the old. The
    members may unpack to ``max_ratio`` times the archive's size (at least ``RATIO_FLOOR``) and at
    most ``max_bytes`` in all; past that the archive is refused before the member is unpacked.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    if not archive.is_file():
        raise DataError(f"archive {archive} does not exist or is not a file")
    occupied = dest_dir.exists() and (not dest_dir.is_dir() or any(dest_dir.iterdir()))
    if occupied and not overwrite:
        raise DataError(f"cannot extract {archive}: {dest_dir} already exists and is not empty "
                        f"(pass overwrite=True to replace it)")
    clean_stale(dest_dir)  # scratch folders of a killed run
    try:
        with atomic(dest_dir) as tmp:
            tmp.mkdir()
            limit = _limit(archive, max_bytes, max_ratio)
            if zipfile.is_zipfile(archive):
                _extract_zip(archive, tmp, dest_dir, limit)
            elif tarfile.is_tarfile(archive):
                _extract_tar(archive, tmp, dest_dir, limit)
            else:
                raise DataError(f"archive {archive} is neither a zip nor a tar "
                                f"(.tar, .tar.gz, .tar.bz2, .tar.xz) file")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"extracting {archive} into {dest_dir} failed: {type(exc).__name__}: {exc}") from exc
    return sorted(p for p in dest_dir.rglob("*") if p.is_file())


def fetch_archive(url: str, archive: Path, target: Path, *, sha256: str | None = None,
                  max_bytes: int = MAX_UNPACKED_BYTES, max_ratio: float = MAX_RATIO) -> DownloadResult:
    """Download ``archive`` (resumable, checksummed) and unpack it into ``target`` (bounded as in
    :func:`extract`), unless an already downloaded archive is unpacked there (a re-run then touches nothing)."""
    result = download(url, archive, sha256=sha256)
    if not result.cached or not (target.is_dir() and any(target.iterdir())):
        extract(result.path, target, overwrite=True, max_bytes=max_bytes, max_ratio=max_ratio)
    return result
