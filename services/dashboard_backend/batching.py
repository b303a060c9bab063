"""A server connection that writes the frames queued for one client in one socket write.

py-spy on the running backend under fan-out load (50 clients) showed the event loop
spending most of its time in the kernel's send path: one ``send()`` per frame per
client. The frames already queued for a client now leave in a single write; each is
still its own WebSocket frame, so clients see exactly the same protocol.

A broadcast frame is the same bytes for every client (a server does not mask, and no
extension is negotiated: the backend serves without permessage-deflate), so the backend
builds it once per message (``text_frame``) and, while a connection is open with nothing
else in flight, hands those bytes straight to the transport (``direct_ok`` then
``write_frames``) instead of having websockets build and serialize a frame per client.
Anything else (a connection closing, paused by flow control, or one that negotiated an
extension) takes websockets' own path (``send_frames``), as before.
"""

from __future__ import annotations

import contextlib

from websockets.asyncio.server import ServerConnection
from websockets.protocol import OPEN

from .fanout import Outgoing

__all__ = ["BatchingConnection", "payload_of", "text_frame"]


def text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented text frame (FIN, no RSV bits) carrying ``payload``.

    The same bytes websockets' ``Frame(OP_TEXT, payload).serialize(mask=False)`` makes.
    """
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 0x10000:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


def payload_of(frame: bytes) -> bytes:
    """The payload of a frame made by ``text_frame``."""
    n = frame[1]
    return frame[2:] if n < 126 else frame[4:] if n == 126 else frame[10:]


class BatchingConnection(ServerConnection):
    """``ServerConnection`` plus batched and prebuilt-frame sends.

    Pass it to ``serve(create_connection=...)``.
    """

    def direct_ok(self) -> bool:
        """Whether prebuilt frames may be written to the transport now, bypassing websockets.

        Only while the connection is OPEN, with no extension negotiated (the frames
        are built unmasked and uncompressed), no fragmented message and nothing of the
        protocol's own waiting to be written (so the order on the wire is kept), and
        the transport is neither closing nor paused by flow control (a paused one is
        left to ``send_frames``, which waits for it to drain).
        """
        protocol = self.protocol
        return (
            protocol.state is OPEN
            and not protocol.extensions
            and not protocol.expect_continuation_frame
            and not protocol.writes
            and self.fragmented_send_waiter is None
            and not self.paused
            and not self.transport.is_closing()
        )

    def write_frames(self, frames: list[Outgoing]) -> None:
        """Write the frames in one transport write; bytes items are complete frames.

        Only right after ``direct_ok()`` returned True, in the same callback.
        """
        if len(frames) == 1:
            data = frames[0]
            self.transport.write(data if isinstance(data, bytes) else text_frame(data.encode()))
            return
        try:
            self.transport.write(b"".join(frames))  # type: ignore[arg-type]  # bytes, nearly always
        except TypeError:  # some are texts: frame those
            self.transport.write(b"".join(f if isinstance(f, bytes) else text_frame(f.encode()) for f in frames))

    async def send_frames(self, frames: list[Outgoing]) -> None:
        """Send each item as one text frame, with one write and one flow-control wait."""
        async with self.send_context():
            protocol = self.protocol
            if protocol.extensions or protocol.expect_continuation_frame:
                for item in frames:
                    protocol.send_text(item.encode() if isinstance(item, str) else payload_of(item))
                return
            if protocol.writes:  # keep the order: what websockets already queued goes first
                self.send_data()
            self._write(
                [item if isinstance(item, bytes) else text_frame(item.encode()) for item in frames],
            )

    async def send_texts(self, texts: list[str]) -> None:
        """Send each text as one text frame, with one write and one flow-control wait."""
        await self.send_frames(list(texts))

    def send_data(self) -> None:
        """As the base class, but consecutive outgoing chunks are joined into one write."""
        pending: list[bytes] = []
        for data in self.protocol.data_to_send():
            if data:
                pending.append(data)
                continue
            self._write(pending)
            pending = []
            # End of stream: half-close when possible, as the base class does.
            if self.transport.can_write_eof():
                with contextlib.suppress(OSError, RuntimeError):  # as in websockets
                    self.transport.write_eof()
            else:  # pragma: no cover
                self.transport.close()
        self._write(pending)

    def _write(self, chunks: list[bytes]) -> None:
        if len(chunks) == 1:
            self.transport.write(chunks[0])
        elif chunks:
            self.transport.write(b"".join(chunks))
