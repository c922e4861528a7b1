"""Per-buffer compression with zstd or lz4 (docs/format.md, "Compression")."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import FormatError
from .layout import CODECS

DEFAULT_LEVELS = {"zstd": 3, "lz4": 0}
MIN_COMPRESS = 1024  # buffers smaller than this are stored raw


def parse_spec(compress: Any) -> tuple[str, int] | None:
    """Normalise the ``compress=`` argument: None, "zstd", "lz4" or (codec, level)."""
    if compress is None or compress is False:
        return None
    if isinstance(compress, str):
        codec, level = compress, None
    elif isinstance(compress, tuple) and len(compress) == 2:
        codec, level = compress
    else:
        raise ValueError(
            f"compress must be None, 'zstd', 'lz4' or a (codec, level) tuple, not {compress!r}"
        )
    if codec not in CODECS:
        raise ValueError(f"unknown compression {codec!r}; choose one of {', '.join(CODECS)}")
    if level is None:
        level = DEFAULT_LEVELS[codec]
    if not isinstance(level, int) or isinstance(level, bool):
        raise ValueError(f"compression level must be an int, not {level!r}")
    if codec == "zstd" and not -7 <= level <= 22:
        raise ValueError(f"zstd level must be between -7 and 22, not {level}")
    if codec == "lz4" and not 0 <= level <= 16:
        raise ValueError(f"lz4 level must be between 0 and 16, not {level}")
    return codec, level


def _compressor(codec: str, level: int) -> Callable[[memoryview], bytes]:
    if codec == "zstd":
        import zstandard

        def zc(data: memoryview) -> bytes:
            # A compressor object per call: they are not thread-safe.
            c = zstandard.ZstdCompressor(level=level, write_content_size=True)
            return bytes(c.compress(data))

        return zc
    import lz4.frame

    def lc(data: memoryview) -> bytes:
        return bytes(
            lz4.frame.compress(
                data, compression_level=level, store_size=True, content_checksum=False
            )
        )

    return lc


def compress_all(
    buffers: Sequence[memoryview], spec: tuple[str, int] | None
) -> list[tuple[memoryview | bytes, str | None]]:
    """Compress each buffer worth compressing, in parallel; keep the raw bytes otherwise."""
    if spec is None:
        return [(b, None) for b in buffers]
    codec, level = spec
    fn = _compressor(codec, level)

    def one(b: memoryview) -> tuple[memoryview | bytes, str | None]:
        if len(b) < MIN_COMPRESS:
            return b, None
        c = fn(b)
        return (c, codec) if len(c) < len(b) else (b, None)

    if len(buffers) <= 1:
        return [one(b) for b in buffers]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(one, buffers))


class _Overflow(Exception):
    """The frame decompresses to more bytes than the header declares."""


class _Sink:
    """A write target over a preallocated bytearray that refuses to overflow."""

    def __init__(self, out: bytearray) -> None:
        self.view = memoryview(out)
        self.pos = 0

    def write(self, chunk: bytes) -> int:
        end = self.pos + len(chunk)
        if end > len(self.view):
            raise _Overflow
        self.view[self.pos : end] = chunk
        self.pos = end
        return len(chunk)


def decompress(
    data: memoryview, codec: str, raw_size: int, index: int, where: Callable[[int], str]
) -> bytearray:
    """Decompress one buffer to exactly ``raw_size`` bytes.

    The frame must declare that size; output beyond it, a second frame with
    content, or bytes that are not a frame are errors. zstd output is written
    straight into one preallocated bytearray, so memory peaks at the raw size.
    """
    try:
        if codec == "zstd":
            import zstandard

            declared = zstandard.frame_content_size(data)
            if declared != raw_size:
                raise FormatError(
                    f"{where(index)}: zstd frame declares {declared} bytes, header says {raw_size}"
                )
            out = bytearray(raw_size)
            sink = _Sink(out)
            dctx: Any = zstandard.ZstdDecompressor()
            with dctx.stream_writer(sink, closefd=False) as writer:
                writer.write(data)
                writer.flush()
            if sink.pos != raw_size:
                raise FormatError(f"{where(index)}: zstd data ends after {sink.pos} bytes")
            return out
        if codec == "lz4":
            import lz4.frame

            info = lz4.frame.get_frame_info(data)
            if info.get("content_size") != raw_size:
                raise FormatError(
                    f"{where(index)}: lz4 frame declares {info.get('content_size')} bytes, "
                    f"header says {raw_size}"
                )
            dec = lz4.frame.LZ4FrameDecompressor(return_bytearray=True)
            result = dec.decompress(data, max_length=raw_size + 1)
            if not dec.eof or dec.unused_data or len(result) != raw_size:
                raise FormatError(f"{where(index)}: the lz4 data is not exactly one frame")
            return bytearray(result) if type(result) is not bytearray else result
        raise FormatError(f"{where(index)}: unknown compression {codec!r}")
    except _Overflow:
        raise FormatError(f"{where(index)}: more data than the header declares") from None
    except (FormatError, MemoryError):
        raise
    except Exception as exc:  # the codecs raise their own error types
        raise FormatError(f"{where(index)}: corrupt {codec} data ({exc})") from exc
