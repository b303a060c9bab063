"""A server connection that writes the frames queued for one client in one socket write.

py-spy on the running backend under fan-out load (50 clients) showed the event loop
spending most of its time in the kernel's send path: one ``send()`` per frame per
client. The frames already queued for a client now leave in a single write; each is
still its own WebSocket frame, so clients see exactly the same protocol.
"""

from __future__ import annotations

import contextlib

from websockets.asyncio.server import ServerConnection

__all__ = ["BatchingConnection"]


class BatchingConnection(ServerConnection):
    """``ServerConnection`` plus ``send_texts``; pass it to ``serve(create_connection=...)``."""

    async def send_texts(self, texts: list[str]) -> None:
        """Send each text as one text frame, with one write and one flow-control wait."""
        async with self.send_context():
            for text in texts:
                self.protocol.send_text(text.encode())

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
