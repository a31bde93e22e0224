"""The only two paths between the host's loopback and a node's network namespace.

The node's namespace has no link to the host: no veth, no route.  Two relays in
the launcher's process carry the traffic a cluster needs, and nothing else:

* :class:`Forwarder`: node -> API server.  A socket listening inside the node's
  namespace on the API server's advertised address (the `kubernetes` Service's
  endpoint), each connection relayed to the API server on the host's 127.0.0.1.
* :class:`EgressProxy`: API server -> node (kubectl logs/exec, service proxies).
  kube-apiserver's egress selector sends its "cluster" traffic as HTTP CONNECT
  over a Unix socket; the proxy opens the connection from inside the node's
  namespace when the target lies in a network the node registered, on the host
  when it is a loopback address, and refuses every other target (403).

Every relay is a pair of threads copying bytes until either side closes.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

_CHUNK = 65536
_CONNECT_TIMEOUT = 10.0
_HEAD_LIMIT = 8192
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(_CHUNK):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock, how in ((sink, socket.SHUT_WR), (source, socket.SHUT_RD)):
            try:
                sock.shutdown(how)
            except OSError:
                pass


def relay(a: socket.socket, b: socket.socket, name: str) -> None:
    """Copy bytes both ways between two connected sockets; close both when both ways end."""

    def run() -> None:
        back = threading.Thread(target=_pump, args=(b, a), name=f"{name}<", daemon=True)
        back.start()
        _pump(a, b)
        back.join()
        a.close()
        b.close()

    threading.Thread(target=run, name=f"{name}>", daemon=True).start()


class _Acceptor:
    """Accept connections on a listening socket in a daemon thread until close()."""

    def __init__(self, listener: socket.socket, handle: Callable[[socket.socket], None], name: str) -> None:
        self._listener = listener
        self._handle = handle
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                if self._closed.is_set():
                    return
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self._thread.join(timeout=5)


class Forwarder:
    """Relay every connection accepted on `listener` (made inside a node's namespace) to `target`."""

    def __init__(self, listener: socket.socket, target: tuple[str, int]) -> None:
        self.target = target
        listener.listen(128)
        self._acceptor = _Acceptor(listener, self._handle, f"forward-{target[1]}")

    def _handle(self, conn: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=_CONNECT_TIMEOUT)
        except OSError:
            conn.close()
            return
        upstream.settimeout(None)
        relay(conn, upstream, f"api-{self.target[1]}")

    def close(self) -> None:
        self._acceptor.close()


class EgressProxy:
    """HTTP CONNECT over a Unix socket, for kube-apiserver's egress selector ("cluster")."""

    def __init__(self, path: Path, log: Path) -> None:
        self.path = path
        self._log_path = log
        self._lock = threading.Lock()
        self._routes: list[tuple[_Network, Callable[[int], socket.socket]]] = []
        self.refused: list[str] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        os.chmod(path, 0o600)
        listener.listen(128)
        self._acceptor = _Acceptor(listener, self._handle, "egress-proxy")

    def add_route(self, network: str, make_socket: Callable[[int], socket.socket]) -> None:
        """Targets in `network` are dialled with a socket from make_socket(family)."""
        with self._lock:
            self._routes.append((ipaddress.ip_network(network), make_socket))

    def remove_routes(self, make_socket: Callable[[int], socket.socket]) -> None:
        with self._lock:
            self._routes = [(n, m) for n, m in self._routes if m is not make_socket]

    def _socket_for(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> socket.socket | None:
        family = socket.AF_INET if address.version == 4 else socket.AF_INET6
        if address.is_loopback:
            return socket.socket(family, socket.SOCK_STREAM)
        with self._lock:
            routes = list(self._routes)
        for network, make_socket in routes:
            if address.version == network.version and address in network:
                return make_socket(family)
        return None

    def _log(self, line: str) -> None:
        with self._lock, open(self._log_path, "a") as log:
            log.write(line + "\n")

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(_CONNECT_TIMEOUT)
        head = b""
        sock: socket.socket | None = None
        try:
            while b"\r\n\r\n" not in head and len(head) < _HEAD_LIMIT:
                chunk = conn.recv(1024)
                if not chunk:
                    break
                head += chunk
            request = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(request) != 3 or request[0] != "CONNECT":
                raise ValueError(f"not a CONNECT request: {request!r}")
            host, _, port = request[1].rpartition(":")
            address = ipaddress.ip_address(host.strip("[]"))
            sock = self._socket_for(address)
            if sock is None:
                self.refused.append(request[1])
                self._log(f"refused {request[1]}: not loopback and in no node's networks")
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")
                conn.close()
                return
            sock.settimeout(_CONNECT_TIMEOUT)
            sock.connect((str(address), int(port)))
        except (OSError, ValueError) as exc:
            self._log(f"failed {head[:200]!r}: {exc}")
            if sock is not None:
                sock.close()
            try:
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            except OSError:
                pass
            conn.close()
            return
        # Anything after the blank line is already the tunnelled stream.
        rest = head.split(b"\r\n\r\n", 1)[1]
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            sock.sendall(rest)
        conn.settimeout(None)
        sock.settimeout(None)
        relay(conn, sock, f"egress-{request[1]}")

    def close(self) -> None:
        self._acceptor.close()
        self.path.unlink(missing_ok=True)


def egress_selector_config(path: Path, proxy_socket: Path) -> Path:
    """kube-apiserver's --egress-selector-config-file: cluster traffic through the proxy."""
    path.write_text(
        "apiVersion: apiserver.k8s.io/v1beta1\n"
        "kind: EgressSelectorConfiguration\n"
        "egressSelections:\n"
        "- name: cluster\n"
        "  connection:\n"
        "    proxyProtocol: HTTPConnect\n"
        "    transport:\n"
        "      uds:\n"
        f"        udsName: {proxy_socket}\n"
    )
    return path
