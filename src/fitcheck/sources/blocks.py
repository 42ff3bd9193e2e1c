"""The bytes of a remote file fetched so far: a sparse map of disjoint, non-adjacent blocks (ranged.py's store).

A block that a streamed read is filling is a bytearray that grows in place, so a reader never meets the
boundary between what came first and what streams after it.
"""

from __future__ import annotations

import bisect


class Blocks:
    def __init__(self) -> None:
        self.starts: list[int] = []  # sorted
        self.blocks: list[bytes | bytearray] = []

    def end_of(self, i: int) -> int:
        return self.starts[i] + len(self.blocks[i])

    def peek(self, offset: int, length: int) -> bytes | None:
        """Bytes [offset, offset + length) if held, else None."""
        i = bisect.bisect_right(self.starts, offset) - 1
        if i < 0:
            return b"" if length == 0 else None
        rel = offset - self.starts[i]
        block = self.blocks[i]
        if rel + length <= len(block):
            return bytes(block[rel:rel + length])
        return None

    def block_at(self, offset: int) -> tuple[int, bytes | bytearray] | None:
        """The block holding `offset`, as (its start, its bytes)."""
        i = bisect.bisect_right(self.starts, offset) - 1
        if i >= 0 and offset < self.end_of(i):
            return self.starts[i], self.blocks[i]
        return None

    def next_start(self, offset: int) -> int | None:
        """Where the first block after `offset` starts."""
        i = bisect.bisect_right(self.starts, offset)
        return self.starts[i] if i < len(self.starts) else None

    def gaps(self, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of [start, end) no block holds."""
        gaps, pos = [], start
        i = max(0, bisect.bisect_right(self.starts, start) - 1)
        while pos < end and i <= len(self.starts):
            if i == len(self.starts):
                gaps.append((pos, end))
                break
            b_start, b_end = self.starts[i], self.end_of(i)
            if b_end <= pos:
                i += 1
                continue
            if b_start > pos:
                gaps.append((pos, min(end, b_start)))
            pos = max(pos, b_end)
            i += 1
        return [(a, b) for a, b in gaps if b > a]

    def store(self, offset: int, data: bytes) -> None:
        """Add a block, merged with the blocks it overlaps or touches."""
        if not data:
            return
        end = offset + len(data)
        i = bisect.bisect_left(self.starts, offset)
        if i > 0 and self.end_of(i - 1) >= offset:
            i -= 1
        j = i
        new_start, pieces = offset, []
        while j < len(self.starts) and self.starts[j] <= end:
            b_start, block = self.starts[j], self.blocks[j]
            new_start = min(new_start, b_start)
            pieces.append((b_start, block))
            j += 1
        merged = bytearray()
        cursor = new_start
        for b_start, block in sorted([*pieces, (offset, data)], key=lambda p: p[0]):
            b_end = b_start + len(block)
            if b_end > cursor:
                merged += block[cursor - b_start:]
                cursor = b_end
        self.starts[i:j] = [new_start]
        self.blocks[i:j] = [bytes(merged)]

    def growing(self, offset: int) -> int:
        """The index of a block that grows from `offset`: the block ending there, else a new empty one."""
        i = bisect.bisect_right(self.starts, offset) - 1
        if i >= 0 and self.end_of(i) == offset:
            self.blocks[i] = bytearray(self.blocks[i])
            return i
        self.starts.insert(i + 1, offset)
        self.blocks.insert(i + 1, bytearray())
        return i + 1

    def settle(self, i: int) -> None:
        """A growing block is done: kept as bytes, or dropped when nothing came."""
        if self.blocks[i]:
            self.blocks[i] = bytes(self.blocks[i])
        else:
            del self.starts[i], self.blocks[i]
