"""Offline tests of the downloader against a local HTTP server that can misbehave on demand."""
from __future__ import annotations

import hashlib
import io
import json
import random
import re
import tarfile
import threading
import time
import zipfile
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import pipeline.data.download as dl
from pipeline.core.errors import ConfigError, DataError
from pipeline.data.download import (ChecksumError, DownloadResult, download, extract, load_manifest, record_manifest,
                                    sha256_file)

PAYLOAD = random.Random(0).randbytes(100_000)
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
FAST = dict(backoff=0.01, timeout=5.0, chunk_size=4096, progress=False)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a stalled handler must not hold up teardown

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = {"/data.bin": PAYLOAD}
        self.requests: list[dict] = []
        self.cut_after: int | None = None  # bytes of body sent before hanging up...
        self.cut_times = 0  # ...on this many of the next requests
        self.stall = 0.0  # seconds to go silent before hanging up (client timeout)
        self.ignore_range = False
        self.errors: list[int] = []  # statuses answered first, one per request
        self.no_length = False  # send bodies without Content-Length (their end is the close)
        self.content_type = "application/octet-stream"
        self.lock = threading.Lock()

    def url(self, path: str = "/data.bin") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        srv: _Server = self.server
        rng = self.headers.get("Range")
        with srv.lock:
            srv.requests.append({"path": self.path, "range": rng})
            error = srv.errors.pop(0) if srv.errors else None
            cut = None
            if srv.cut_times > 0:
                srv.cut_times -= 1
                cut = srv.cut_after
        if error:
            self.send_error(error)
            return
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if rng and not srv.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", srv.content_type)
        if not srv.no_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            time.sleep(srv.stall)
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_plain_download_records_checksum(server, tmp_path):
    dest = tmp_path / "sub" / "data.bin"
    res = download(server.url(), dest, sha256=DIGEST.upper(), **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert res == DownloadResult(dest, DIGEST, len(PAYLOAD), server.url(), resumed=False, cached=False)
    assert sha256_file(dest) == DIGEST
    assert _leftovers(dest.parent) == ["data.bin"]
    assert [r["range"] for r in server.requests] == [None]


def test_resume_after_cut_connection(server, tmp_path):
    server.cut_after, server.cut_times = 30_000, 1
    res = download(server.url(), tmp_path / "data.bin", sha256=DIGEST, **FAST)
    assert [r["range"] for r in server.requests] == [None, "bytes=30000-"]
    assert res.resumed and not res.cached
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD
    assert _leftovers(tmp_path) == ["data.bin"]


def test_timeout_mid_body_is_retried(server, tmp_path):
    server.cut_after, server.cut_times, server.stall = 1000, 1, 0.5
    res = download(server.url(), tmp_path / "data.bin", sha256=DIGEST, **{**FAST, "timeout": 0.1})
    assert len(server.requests) == 2
    assert res.sha256 == DIGEST and (tmp_path / "data.bin").read_bytes() == PAYLOAD


def test_resume_part_left_by_earlier_run(server, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:12_345])
    res = download(server.url(), tmp_path / "data.bin", sha256=DIGEST, **FAST)
    assert [r["range"] for r in server.requests] == ["bytes=12345-"]
    assert res.resumed and (tmp_path / "data.bin").read_bytes() == PAYLOAD


def test_complete_part_answered_416_is_finalised(server, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD)
    res = download(server.url(), tmp_path / "data.bin", sha256=DIGEST, **FAST)
    assert [r["range"] for r in server.requests] == [f"bytes={len(PAYLOAD)}-"]
    assert res.resumed and (tmp_path / "data.bin").read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.ignore_range = True
    server.cut_after, server.cut_times = 30_000, 1
    res = download(server.url(), tmp_path / "data.bin", sha256=DIGEST, **FAST)
    assert [r["range"] for r in server.requests] == [None, "bytes=30000-"]
    assert not res.resumed
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD  # not the first 30 kB twice


def test_stale_part_is_redownloaded_whole_when_checksum_fails(server, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(b"\0" * 5000)  # wrong bytes from another version
    res = download(server.url(), tmp_path / "data.bin", sha256=DIGEST, **FAST)
    assert [r["range"] for r in server.requests] == ["bytes=5000-", None]
    assert not res.resumed and (tmp_path / "data.bin").read_bytes() == PAYLOAD


def test_checksum_mismatch_refused_and_nothing_left(server, tmp_path):
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as err:
        download(server.url(), tmp_path / "data.bin", sha256=wrong, **FAST)
    msg = str(err.value)
    assert "data.bin" in msg and wrong in msg and DIGEST in msg
    assert isinstance(err.value, DataError)
    assert _leftovers(tmp_path) == []


def test_404_fails_at_once(server, tmp_path):
    url = server.url("/missing.zip")
    with pytest.raises(DataError, match=r"missing\.zip.*HTTP 404"):
        download(url, tmp_path / "missing.zip", retries=5, **FAST)
    assert len(server.requests) == 1
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("status", [503, 500, 429])
def test_transient_status_is_retried(server, tmp_path, status):
    server.errors = [status]
    res = download(server.url(), tmp_path / "data.bin", sha256=DIGEST, **FAST)
    assert len(server.requests) == 2 and res.size == len(PAYLOAD)


def test_gives_up_after_retries_and_next_run_resumes(server, tmp_path):
    server.cut_after, server.cut_times = 1000, 100
    with pytest.raises(DataError, match=r"data\.bin.*after 3 attempt.*connection closed after 3000 bytes"):
        download(server.url(), tmp_path / "data.bin", retries=2, **FAST)
    assert len(server.requests) == 3
    assert not (tmp_path / "data.bin").exists()
    assert (tmp_path / "data.bin.part").stat().st_size == 3000

    server.cut_times = 0
    res = download(server.url(), tmp_path / "data.bin", sha256=DIGEST, **FAST)
    assert server.requests[-1]["range"] == "bytes=3000-"
    assert res.resumed and (tmp_path / "data.bin").read_bytes() == PAYLOAD


def test_cached_skip(server, tmp_path):
    dest = tmp_path / "data.bin"
    download(server.url(), dest, **FAST)
    for sha in (DIGEST, None):
        res = download(server.url(), dest, sha256=sha, **FAST)
        assert res.cached and res.sha256 == DIGEST and res.size == len(PAYLOAD)
    assert len(server.requests) == 1


def test_existing_file_with_wrong_checksum_is_replaced(server, tmp_path):
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"old version")
    res = download(server.url(), dest, sha256=DIGEST, **FAST)
    assert not res.cached and dest.read_bytes() == PAYLOAD


def test_progress_bar_updated(server, tmp_path, monkeypatch):
    bars = []

    class RecordingBar(dl.tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["file"] = io.StringIO()
            super().__init__(*args, **kwargs)
            self.updates = []
            bars.append(self)

        def update(self, n=1):
            self.updates.append(n)
            return super().update(n)

    monkeypatch.setattr(dl, "tqdm", RecordingBar)
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:10_000])
    download(server.url(), tmp_path / "data.bin", **{**FAST, "progress": True})
    [bar] = bars
    assert bar.total == len(PAYLOAD) and bar.n == len(PAYLOAD)
    assert sum(bar.updates) == len(PAYLOAD) - 10_000 and len(bar.updates) > 1
    assert "data.bin" in bar.fp.getvalue()


@pytest.mark.parametrize("kwargs, key", [
    (dict(url="ftp://example.org/x"), "url"),
    (dict(sha256="abc"), "sha256"),
    (dict(retries=-1), "retries"),
    (dict(timeout=0), "timeout"),
    (dict(chunk_size=0), "chunk_size"),
])
def test_bad_arguments_rejected(tmp_path, kwargs, key):
    args = dict(url="http://127.0.0.1:9/x", dest=tmp_path / "x", **FAST)
    args.update(kwargs)
    with pytest.raises(ConfigError, match=key):
        download(args.pop("url"), args.pop("dest"), **args)


def test_manifest_round_trip(server, tmp_path):
    raw = tmp_path / "raw"
    first = download(server.url(), raw / "data.bin", **FAST)
    other = raw / "nested" / "other.bin"
    other.parent.mkdir()
    other.write_bytes(b"abc")
    second = DownloadResult(other, sha256_file(other), 3, "http://x/other.bin", cached=True)
    manifest = raw / "manifest.json"
    record_manifest([first, second], manifest)

    files = load_manifest(manifest)["files"]
    assert sorted(files) == ["data.bin", "nested/other.bin"]
    entry = files["data.bin"]
    assert entry["url"] == server.url() and entry["size"] == len(PAYLOAD) and entry["sha256"] == DIGEST
    when = datetime.fromisoformat(entry["downloaded_at"])
    assert when.utcoffset().total_seconds() == 0
    assert abs((when - datetime.now(timezone.utc)).total_seconds()) < 60

    # a cached re-download keeps its entry's time; an update leaves other entries alone
    stamp = "2001-01-01T00:00:00+00:00"
    data = json.loads(manifest.read_text())
    data["files"]["data.bin"]["downloaded_at"] = stamp
    manifest.write_text(json.dumps(data))
    again = download(server.url(), raw / "data.bin", **FAST)
    other.write_bytes(b"abcd")
    record_manifest([again, DownloadResult(other, sha256_file(other), 4, "http://x/other.bin")], manifest)
    files = load_manifest(manifest)["files"]
    assert files["data.bin"]["downloaded_at"] == stamp
    assert files["nested/other.bin"]["size"] == 4
    assert _leftovers(raw) == ["data.bin", "manifest.json", "nested"]  # no temp file left


def test_load_manifest_rejects_bad_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_manifest(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="bad.json"):
        load_manifest(bad)
    bad.write_text(json.dumps({"files": {"a": {"url": "u"}}}))
    with pytest.raises(DataError, match="sha256"):
        load_manifest(bad)


MEMBERS = {"a.txt": b"alpha", "sub/b.bin": bytes(range(256)), "sub/deeper/c.nc": b"\x89HDF"}


def _make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _make_tar(path: Path, members: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("make, name", [(_make_zip, "a.zip"), (_make_tar, "a.tar.gz"),
                                        (lambda p, m: _make_tar(p, m, "w"), "a.tar")])
def test_extract(tmp_path, make, name):
    archive = make(tmp_path / name, MEMBERS)
    out = tmp_path / "out"
    files = extract(archive, out)
    assert files == sorted(out / n for n in MEMBERS)
    for n, data in MEMBERS.items():
        assert (out / n).read_bytes() == data
    assert _leftovers(tmp_path) == sorted([name, "out"])


@pytest.mark.parametrize("make", [_make_zip, _make_tar])
@pytest.mark.parametrize("evil", ["../evil.txt", "sub/../../evil.txt", "/tmp/evil.txt"])
def test_extract_refuses_escaping_member(tmp_path, make, evil):
    archive = make(tmp_path / "bad.archive", {"ok.txt": b"fine", evil: b"pwned"})
    with pytest.raises(DataError, match=r"bad\.archive.*outside"):
        extract(archive, tmp_path / "x" / "out")
    assert _leftovers(tmp_path) == ["bad.archive", "x"]
    assert _leftovers(tmp_path / "x") == []  # no half-written or temp folder


def test_extract_refuses_link_outside(tmp_path):
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tf:
        info = tarfile.TarInfo("innocent")
        info.type, info.linkname = tarfile.SYMTYPE, "../../etc/passwd"
        tf.addfile(info)
    with pytest.raises(DataError, match="innocent"):
        extract(archive, tmp_path / "out")
    assert _leftovers(tmp_path) == ["link.tar"]


def test_extract_removes_what_a_killed_extraction_left(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x.txt", "x")
    (tmp_path / ".out.tmp-k1ll3d" / "half").mkdir(parents=True)  # outputs.scratch names it so
    extract(archive, tmp_path / "out")
    assert _leftovers(tmp_path) == ["a.zip", "out"]


def test_extract_into_existing_folder(tmp_path):
    archive = _make_zip(tmp_path / "a.zip", MEMBERS)
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    with pytest.raises(DataError, match="not empty"):
        extract(archive, out)
    assert _leftovers(out) == ["stale.txt"]
    files = extract(archive, out, overwrite=True)
    assert not (out / "stale.txt").exists() and len(files) == len(MEMBERS)
    assert _leftovers(tmp_path) == ["a.zip", "out"]


def test_extract_rejects_non_archive(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"definitely not an archive" * 40)
    with pytest.raises(DataError, match="neither a zip nor a tar"):
        extract(junk, tmp_path / "out")
    assert _leftovers(tmp_path) == ["junk.zip"]


# ------------------------------------------------------------------ verification without a pin
HTML = b"<!DOCTYPE html>\n<html><body>Service temporarily unavailable</body></html>\n"


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("dataset.npz", PAYLOAD)
    return buf.getvalue()


def test_html_page_served_with_200_is_refused_and_the_next_run_refetches(server, tmp_path):
    server.files["/data.zip"] = HTML
    server.content_type = "text/html; charset=utf-8"
    with pytest.raises(DataError, match="data.zip downloaded from .*: it is an HTML page, not the file"):
        download(server.url("/data.zip"), tmp_path / "data.zip", **FAST)
    assert _leftovers(tmp_path) == []
    server.files["/data.zip"] = _zip_bytes()  # the server recovers: no hand cleaning needed
    server.content_type = "application/zip"
    res = download(server.url("/data.zip"), tmp_path / "data.zip", **FAST)
    assert not res.cached and zipfile.ZipFile(res.path).namelist() == ["dataset.npz"]


def test_short_body_without_content_length_is_refused(server, tmp_path):
    server.no_length = True
    server.cut_after, server.cut_times = 5000, 1
    with pytest.raises(DataError, match="no Content-Length, so a body cut short cannot be told"):
        download(server.url(), tmp_path / "data.bin", **FAST)
    assert not (tmp_path / "data.bin").exists() and not (tmp_path / "data.bin.part").exists()
    # a cut-short archive fails its opening check instead
    server.files["/data.zip"] = _zip_bytes()
    server.cut_after, server.cut_times = 3000, 1
    with pytest.raises(DataError, match="does not open as a zip archive"):
        download(server.url("/data.zip"), tmp_path / "data.zip", **FAST)
    res = download(server.url("/data.zip"), tmp_path / "data.zip", **FAST)  # whole this time
    assert zipfile.ZipFile(res.path).namelist() == ["dataset.npz"]
    # with a pinned checksum the unframed body is accepted: the checksum proves it whole
    res = download(server.url(), tmp_path / "data.bin", sha256=DIGEST, **FAST)
    assert res.path.read_bytes() == PAYLOAD


def test_first_download_records_the_checksum_later_ones_verify_it(server, tmp_path):
    dest = tmp_path / "data.bin"
    download(server.url(), dest, **FAST)
    recorded = json.loads(dl.checksums_path().read_text())[server.url()]
    assert recorded["sha256"] == DIGEST and recorded["size"] == len(PAYLOAD)

    dest.write_bytes(PAYLOAD[:-1] + b"x")  # the cached file rots: fetched again, not trusted
    res = download(server.url(), dest, **FAST)
    assert not res.cached and dest.read_bytes() == PAYLOAD

    server.files["/data.bin"] = b"something else"  # upstream changed under the same url
    dest.unlink()
    with pytest.raises(ChecksumError, match=f"expected {DIGEST}"):
        download(server.url(), dest, **FAST)
    assert not dest.exists()


def test_cached_archive_that_does_not_open_is_refetched(server, tmp_path):
    server.files["/data.zip"] = _zip_bytes()
    (tmp_path / "data.zip").write_bytes(b"PK\x03\x04 truncated")
    res = download(server.url("/data.zip"), tmp_path / "data.zip", **FAST)
    assert not res.cached and zipfile.ZipFile(res.path).namelist() == ["dataset.npz"]


def _zeros_zip(path: Path, n: int, name: str = "zeros.bin") -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ok.txt", b"fine")
        zf.writestr(name, bytes(n))
    return path


def test_extract_refuses_a_zip_bomb_before_unpacking_it(tmp_path):
    archive = _zeros_zip(tmp_path / "bomb.zip", 32 * 2**20)  # 32 MiB of zeros in ~32 KB: over 200:1
    size = archive.stat().st_size
    with pytest.raises(DataError) as err:
        extract(archive, tmp_path / "out")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"archive {archive}: member 'zeros.bin' brings the unpacked size "
                                              f"to {32 * 2**20 + 4:,} bytes, over the limit of {16 * 2**20:,} "
                                              f"(200 x the archive's {size:,} bytes")
    assert _leftovers(tmp_path) == ["bomb.zip"]  # nothing unpacked


def test_extract_limits_are_per_call(tmp_path):
    archive = _zeros_zip(tmp_path / "a.zip", 2**20)
    with pytest.raises(DataError, match=r"a\.zip: member 'zeros\.bin' .* over the limit of 1,000,000 "):
        extract(archive, tmp_path / "out", max_bytes=1_000_000)
    assert [p.name for p in extract(archive, tmp_path / "out", max_ratio=1)] == ["ok.txt", "zeros.bin"]  # the floor
    tar = tmp_path / "a.tar.gz"
    with tarfile.open(tar, "w:gz") as tf:
        for name in ("one.bin", "two.bin"):
            info = tarfile.TarInfo(name)
            info.size = 600_000
            tf.addfile(info, io.BytesIO(bytes(info.size)))
    with pytest.raises(DataError, match=r"a\.tar\.gz: member 'two\.bin' brings the unpacked size to 1,200,000 bytes"):
        extract(tar, tmp_path / "out2", max_bytes=1_000_000)
    assert _leftovers(tmp_path) == ["a.tar.gz", "a.zip", "out"]


def test_extract_refuses_a_member_larger_than_declared(tmp_path):
    archive = _zeros_zip(tmp_path / "liar.zip", 100_000)
    data = bytearray(archive.read_bytes())
    central = data.rindex(b"PK\x01\x02")  # the last member's central directory entry
    data[central + 24:central + 28] = (1000).to_bytes(4, "little")  # declares 1,000 bytes
    archive.write_bytes(bytes(data))
    with pytest.raises(DataError) as err:
        extract(archive, tmp_path / "out")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"archive {archive}: member 'zeros.bin' does not unpack to its "
                                              f"declared 1,000 bytes")
    assert _leftovers(tmp_path) == ["liar.zip"]
