"""Caltech Pedestrian's Norpix .seq videos: finding the jpg frames (header and frame offsets as
in Piotr Dollar's ``seqIo``, the Caltech authors' own reader), and writing the format for twins."""
from __future__ import annotations

import io
import logging
import struct
from pathlib import Path

import numpy as np

from pipeline.core.errors import DataError

log = logging.getLogger(__name__)

SEQ_HEADER = 1024
SEQ_JPEG_FORMATS = (102, 201)
SEQ_FRAME_TAIL = 16  # timestamp (uint32 s, uint16 ms) and padding after each jpg frame


def seq_frames(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of every jpg frame of a Norpix .seq file, as seqIo finds them."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(SEQ_HEADER)
        if len(header) < SEQ_HEADER or struct.unpack_from("<I", header, 0)[0] != 0xFEED \
                or header[4:24].decode("utf-16-le", "replace") != "Norpix seq":
            raise DataError(f"{path}: not a Norpix .seq file (bad header)")
        fields = struct.unpack_from("<9I", header, 548)
        image_format, count = fields[5], fields[6]
        if image_format not in SEQ_JPEG_FORMATS:
            raise DataError(f"{path}: .seq image format {image_format} is not jpg "
                            f"({SEQ_JPEG_FORMATS}); only jpg-compressed .seq files are supported")
        frames, seek = [], SEQ_HEADER
        for i in range(count):
            f.seek(seek)
            raw = f.read(4)
            n = struct.unpack("<I", raw)[0] if len(raw) == 4 else 0
            ok = 4 < n and seek + n <= size
            if ok:
                f.seek(seek + 4)
                soi = f.read(2)
                f.seek(seek + n - 2)
                ok = soi == b"\xff\xd8" and f.read(2) == b"\xff\xd9"
            if not ok:
                if i == count - 1:  # a known defect of some Caltech files: a cut last frame
                    log.warning("%s: last frame %d is incomplete and skipped", path, i)
                    break
                raise DataError(f"{path}: frame {i} of {count} at byte {seek} is not a complete jpg")
            frames.append((seek + 4, n - 4))
            seek += n + SEQ_FRAME_TAIL
    return frames


def write_seq(path: Path, frames: np.ndarray, fps: float = 30.0, quality: int = 85) -> None:
    """Write (n, H, W, 3) uint8 frames as a jpg-compressed Norpix .seq file (Caltech's format)."""
    from PIL import Image

    n, height, width = frames.shape[:3]
    header = bytearray(SEQ_HEADER)
    struct.pack_into("<I", header, 0, 0xFEED)
    header[4:28] = "Norpix seq\n".encode("utf-16-le").ljust(24, b"\0")
    struct.pack_into("<iI", header, 28, 3, SEQ_HEADER)
    header[36:36 + 24] = "sample twin".encode("utf-16-le").ljust(24, b"\0")
    struct.pack_into("<9I", header, 548, width, height, 24, 8, width * height * 3,
                     SEQ_JPEG_FORMATS[0], n, 0, 0)
    struct.pack_into("<d", header, 584, fps)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(bytes(header))
        for i, frame in enumerate(frames):
            buf = io.BytesIO()
            Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
            jpg = buf.getvalue()
            f.write(struct.pack("<I", len(jpg) + 4))
            f.write(jpg)
            seconds = 1_300_000_000 + i / fps
            f.write(struct.pack("<IH", int(seconds), int(seconds % 1 * 1000)).ljust(SEQ_FRAME_TAIL, b"\0"))
