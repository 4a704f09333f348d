"""A zstd stream reader that is fast, lets other threads run, and notices a truncated frame.

``zstandard``'s streaming reader releases the GIL while it decompresses (two streams decompress
in parallel on two cores) and is faster than the stdlib-style ``ZstdFile``, but it ends quietly
when the input stops in the middle of a frame. So the compressed bytes are also walked by
:class:`FrameChecker`, which reads only the frame structure (magic, header, block headers,
checksum; RFC 8878 §3.1) and says whether the input ended at a frame boundary.

References:
    RFC 8878 §3.1.1 (frame header, block headers), §3.1.2 (skippable frames).
"""

from __future__ import annotations

import io
from typing import IO, Any, cast

import zstandard

from kcheckpoint.errors import CorruptCompression

_FRAME_MAGIC = 0xFD2FB528
_SKIPPABLE_MIN, _SKIPPABLE_MAX = 0x184D2A50, 0x184D2A5F
_DICT_ID_SIZES = (0, 1, 2, 4)
_FCS_SIZES = (0, 2, 4, 8)

# What the checker needs next: a number of header bytes to parse, or content bytes to skip.
_MAGIC, _SKIP_SIZE, _DESCRIPTOR, _BLOCK_HEADER = "magic", "skippable size", "descriptor", "block"


class FrameChecker:
    """Follows the frame structure of a zstd stream fed in chunks of any size."""

    def __init__(self) -> None:
        self._state = _MAGIC
        self._need = 4  # header bytes wanted for the current state
        self._pending = bytearray()  # header bytes gathered so far
        self._skip = 0  # content bytes to pass over before the next header
        self._checksum = False
        self._after_skip = _MAGIC
        self.frames = 0

    def feed(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        pos, end = 0, len(view)
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                if not self._skip:
                    self._enter(self._after_skip)
                continue
            take = min(self._need - len(self._pending), end - pos)
            self._pending += view[pos : pos + take]
            pos += take
            if len(self._pending) == self._need:
                header = bytes(self._pending)
                self._pending.clear()
                self._parse(header)

    def _enter(self, state: str) -> None:
        self._state = state
        self._need = {_MAGIC: 4, _SKIP_SIZE: 4, _DESCRIPTOR: 1, _BLOCK_HEADER: 3}[state]

    def _skip_then(self, count: int, state: str) -> None:
        if count:
            self._skip, self._after_skip = count, state
        else:
            self._enter(state)

    def _parse(self, header: bytes) -> None:
        value = int.from_bytes(header, "little")
        if self._state == _MAGIC:
            if value == _FRAME_MAGIC:
                self._enter(_DESCRIPTOR)
            elif _SKIPPABLE_MIN <= value <= _SKIPPABLE_MAX:
                self._enter(_SKIP_SIZE)
            else:
                raise CorruptCompression("the zstd data is corrupt (no frame magic)")
        elif self._state == _SKIP_SIZE:
            self._skip_then(value, _MAGIC)
        elif self._state == _DESCRIPTOR:
            fcs_flag, single = value >> 6, (value >> 5) & 1
            self._checksum = bool((value >> 2) & 1)
            rest = (0 if single else 1) + _DICT_ID_SIZES[value & 3]
            rest += _FCS_SIZES[fcs_flag] if fcs_flag else single
            self._skip_then(rest, _BLOCK_HEADER)
        else:  # block header: Last_Block (1 bit), Block_Type (2), Block_Size (21)
            last, kind, size = value & 1, (value >> 1) & 3, value >> 3
            if kind == 3:
                raise CorruptCompression("the zstd data is corrupt (reserved block type)")
            content = 1 if kind == 1 else size  # an RLE block stores one byte
            if last:
                self.frames += 1
                self._skip_then(content + (4 if self._checksum else 0), _MAGIC)
            else:
                self._skip_then(content, _BLOCK_HEADER)

    def finish(self) -> None:
        """Raise CorruptCompression unless the input ended exactly between two frames."""
        if self._state != _MAGIC or self._pending or self._skip or not self.frames:
            raise CorruptCompression(
                "the zstd stream ends early (the last frame is incomplete)",
                hint="the archive was probably cut short during copy or download",
            )


class _Tee(io.RawIOBase):
    """Passes the compressed bytes on, and shows each to the frame checker."""

    def __init__(self, raw: IO[bytes], checker: FrameChecker) -> None:
        super().__init__()
        self._raw = raw
        self._checker = checker

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if data:
            self._checker.feed(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class ZstdReader(io.RawIOBase):
    """Decompressed bytes of a zstd stream; CorruptCompression when it is damaged or cut."""

    def __init__(self, raw: IO[bytes], *, max_window: int = 1 << 31) -> None:
        super().__init__()
        self._checker = FrameChecker()
        decompressor = zstandard.ZstdDecompressor(max_window_size=max_window)
        self._reader = decompressor.stream_reader(
            cast(IO[bytes], _Tee(raw, self._checker)), read_size=1 << 20, read_across_frames=True
        )
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._done:
            return 0
        try:
            n = self._reader.readinto(buffer)
        except zstandard.ZstdError as exc:
            raise CorruptCompression(f"the zstd data is corrupt ({exc})") from exc
        if not n:
            self._done = True
            self._checker.finish()
        return int(n)
