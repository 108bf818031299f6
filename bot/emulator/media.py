"""Files in the emulator: sample media users send, and what Telegram checks about uploads.

Telegram rejects a photo it cannot decode (``Bad Request: IMAGE_PROCESS_FAILED``) and reports
the real width and height of the ones it can. The emulator reads the dimensions from the image
header (PNG, JPEG, GIF, WebP) without decoding pixels, so no imaging library is needed, and
tests that upload a photo must upload an image: :func:`make_png` makes one.
"""

from __future__ import annotations

import mimetypes
import struct
import zlib


def make_png(width: int = 1, height: int = 1, rgb: tuple[int, int, int] = (255, 160, 0)) -> bytes:
    """A valid solid-colour PNG of the given size."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


#: A 1×1 PNG, the smallest photo Telegram accepts.
TINY_PNG = make_png()
#: Bytes standing in for a voice note (an Ogg page header and silence); never decoded.
SAMPLE_VOICE = b"OggS\x00\x02" + bytes(58)
#: Bytes standing in for a sticker (a WebP container header); never decoded.
SAMPLE_STICKER = b"RIFF\x24\x00\x00\x00WEBPVP8X" + bytes(24)


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from a PNG, JPEG, GIF or WebP header; None if not an image."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return (width, height) if width and height else None
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return (width, height) if width and height else None
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        # Start-of-frame markers carry the dimensions (except DHT, JPG and DAC).
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return (width, height) if width and height else None
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    kind = data[12:16]
    if kind == b"VP8X" and len(data) >= 30:
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return width, height
    if kind == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def guess_mime(filename: str | None, declared: str | None = None) -> str:
    """The MIME type Telegram would report for an uploaded document."""
    if declared and declared != "application/octet-stream":
        return declared
    guessed = mimetypes.guess_type(filename or "")[0]
    return guessed or "application/octet-stream"
