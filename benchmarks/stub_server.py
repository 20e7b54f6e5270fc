"""A canned Chat Completions server that is not the bottleneck of a scale benchmark, logging its own send times.

    python benchmarks/stub_server.py --port 8111 --processes 2 --log-dir /tmp/stub   # until SIGTERM

Each of `--processes` processes listens on the same port (SO_REUSEPORT: the kernel spreads connections over them)
with a bare asyncio protocol (no framework, no JSON parsing of the request beyond finding the end of its body): a
POST to .../chat/completions gets a streamed answer, the role chunk at once, then `--tokens` content chunks, the
first `--ttft-ms` after the request was read and the others `--itl-ms` apart, a usage chunk and [DONE]. Every chunk
is prepared ahead; a request costs the server a few tens of microseconds. `--tokens 600 --itl-ms 50` is a long
stream (30 s). Each answer carries `x-request-id`, which the client stores as the row's request_id.

Each process writes its log, one line a request (request id, when the request was read, when the first token was
written, when the last chunk was written: time.time(), seconds), to LOG_DIR/stub-PID.tsv, buffered and flushed when
it ends (SIGTERM) and every second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
import signal
import socket
import sys
import time

HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        b"transfer-encoding: chunked\r\nx-request-id: %s\r\n\r\n")
MODELS = b'{"object":"list","data":[{"id":"m","object":"model","owned_by":"stub"}]}'
# Anything else (GuideLLM's /health, a model list): 200 with the one model, so that a tool's own check passes.
OTHER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(MODELS), MODELS)


def chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def sse(payload: dict) -> bytes:
    return chunked(b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n")


class Canned:
    """The answer's chunks, built once: only the id differs between requests (a fixed-width slot replaced)."""

    def __init__(self, tokens: int) -> None:
        base = {"id": "chatcmpl-XXXXXXXXXXXXXXXX", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": "stub"}
        self.role = sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                              "finish_reason": None}]})
        self.tokens = [sse({**base, "choices": [{"index": 0, "delta": {"content": f" tok{i}"},
                                                 "finish_reason": "stop" if i == tokens - 1 else None}]})
                       for i in range(tokens)]
        self.tail = (sse({**base, "choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": tokens,
                                                           "total_tokens": 20 + tokens}})
                     + chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n")


class Stub(asyncio.Protocol):
    def __init__(self, server: "Server") -> None:
        self.server, self.buffer, self.transport = server, b"", None
        self.need: int | None = None  # bytes of the request (head and body) once its head is read

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.need is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buffer[:end].lower()
                length = 0
                for line in head.split(b"\r\n"):
                    if line.startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                self.need = end + 4 + length
            if len(self.buffer) < self.need:
                return
            request, self.buffer, self.need = self.buffer[:self.need], self.buffer[self.need:], None
            self.answer(request)

    def answer(self, request: bytes) -> None:
        read_at = time.time()
        if b"/chat/completions" not in request.split(b"\r\n", 1)[0]:
            self.transport.write(OTHER)
            return
        server = self.server
        server.count += 1
        rid = f"{server.pid:07d}{server.count:09d}".encode()
        self.transport.write(HEAD % rid + server.canned.role.replace(b"XXXXXXXXXXXXXXXX", rid))
        loop = asyncio.get_running_loop()
        entry = [rid.decode(), read_at, 0.0, 0.0]
        server.pending += 1
        loop.call_at(loop.time() + server.ttft_s, self.token, 0, rid, entry)

    def token(self, index: int, rid: bytes, entry: list) -> None:
        server = self.server
        if self.transport.is_closing():
            server.pending -= 1
            return
        chunk = server.canned.tokens[index].replace(b"XXXXXXXXXXXXXXXX", rid)
        last = index == len(server.canned.tokens) - 1
        if last:
            chunk += server.canned.tail.replace(b"XXXXXXXXXXXXXXXX", rid)
        self.transport.write(chunk)
        now = time.time()
        if index == 0:
            entry[2] = now
        if last:
            entry[3] = now
            server.pending -= 1
            server.log.append(entry)
            return
        loop = asyncio.get_running_loop()
        loop.call_at(loop.time() + server.itl_s, self.token, index + 1, rid, entry)


class Server:
    def __init__(self, args: argparse.Namespace) -> None:
        self.pid, self.count, self.pending = os.getpid(), 0, 0
        self.canned = Canned(args.tokens)
        self.ttft_s, self.itl_s = args.ttft_ms / 1000, args.itl_ms / 1000
        self.log: list[list] = []
        self.path = Path(args.log_dir) / f"stub-{self.pid}.tsv"

    def flush(self) -> None:
        if self.log:
            with self.path.open("a") as out:
                out.writelines(f"{r}\t{a:.6f}\t{f:.6f}\t{e:.6f}\n" for r, a, f, e in self.log)
            self.log.clear()


async def serve(args: argparse.Namespace, sock: socket.socket) -> None:
    server = Server(args)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    listener = await loop.create_server(lambda: Stub(server), sock=sock, backlog=4096)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            server.flush()
    listener.close()
    server.flush()


def listening(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(4096)
    return sock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8111)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--itl-ms", type=float, default=2.0)
    parser.add_argument("--tokens", type=int, default=10)
    parser.add_argument("--log-dir", default=".")
    args = parser.parse_args()
    children = []
    for _ in range(args.processes - 1):
        pid = os.fork()
        if pid == 0:
            asyncio.run(serve(args, listening(args.port)))
            os._exit(0)
        children.append(pid)
    try:
        asyncio.run(serve(args, listening(args.port)))
    finally:
        for pid in children:
            os.kill(pid, signal.SIGTERM)
        for pid in children:
            os.waitpid(pid, 0)
    sys.exit(0)


if __name__ == "__main__":
    main()
