"""A loopback TCP forwarder that a test can cut or freeze: the database "goes down" or "hangs" mid-run without
stopping the real server."""

from __future__ import annotations

import selectors
import socket
import threading


class TcpProxy:
    """Forward 127.0.0.1:<port> to a target; `down()` drops every connection and refuses new ones until `up()`.

    `freeze()` makes it a server that hangs: connections stay open and new ones are accepted, but nothing is forwarded
    either way (the kernel still acknowledges every packet, as for a stopped server) until `thaw()`.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._is_up = True
        self._frozen = threading.Event()
        self._thawed = threading.Event()
        self._thawed.set()
        self._stopping = False
        self._held: list[socket.socket] = []
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> "TcpProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        self.down()
        self._listener.close()

    def up(self) -> None:
        self._is_up = True

    def down(self) -> None:
        self._is_up = False
        self.thaw()
        with self._lock:
            pairs, self._pairs = self._pairs, []
            held, self._held = self._held, []
        for pair in pairs:
            for sock in pair:
                _close(sock)
        for sock in held:
            _close(sock)

    def freeze(self) -> None:
        self._thawed.clear()
        self._frozen.set()

    def thaw(self) -> None:
        self._frozen.clear()
        self._thawed.set()

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._is_up:
                _close(client)
                continue
            if self._frozen.is_set():  # accepted, never answered: held until thawed, then forwarded
                with self._lock:
                    self._held.append(client)
                threading.Thread(target=self._forward_when_thawed, args=(client,), daemon=True).start()
                continue
            self._forward(client)

    def _forward_when_thawed(self, client: socket.socket) -> None:
        self._thawed.wait()
        with self._lock:
            if client not in self._held:  # dropped by down() meanwhile
                return
            self._held.remove(client)
        self._forward(client)

    def _forward(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self._target, timeout=5)
        except OSError:
            _close(client)
            return
        with self._lock:
            self._pairs.append((client, server))
        threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        try:
            selector.register(client, selectors.EVENT_READ, server)
            selector.register(server, selectors.EVENT_READ, client)
            while True:
                if self._frozen.is_set():
                    self._thawed.wait(0.2)
                    continue
                for key, _ in selector.select(timeout=0.2):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            selector.close()
            _close(client)
            _close(server)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
