"""A DNS server (dnslib) and an HTTPS server (trustme certificate) on 127.0.0.1, for discovery.

Each is a context manager that stops its server (and joins its thread) on
the way out, whatever happened.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import trustme
from dnslib.server import DNSLogger, DNSServer
from dnslib.zoneresolver import ZoneResolver


@contextlib.contextmanager
def dns_serving(zone: str) -> Iterator[int]:
    """A DNS server answering from ``zone`` (master-file text); yields its UDP port."""
    server = DNSServer(
        ZoneResolver(zone),
        address="127.0.0.1",
        port=0,
        logger=DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data"),
    )
    server.start_thread()
    try:
        yield int(server.server.server_address[1])
    finally:
        server.stop()
        server.server.server_close()


@contextlib.contextmanager
def https_serving(ca: trustme.CA, files: Mapping[str, bytes], asked: list[str]) -> Iterator[str]:
    """An HTTPS server for ``localhost`` serving ``files`` by path (else 404); yields its base.

    Every path asked for is appended to ``asked``.
    """
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            asked.append(self.path)
            body = files.get(self.path)
            status = 200 if body is not None else 404
            body = body if body is not None else b"not here"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = server_context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@contextlib.contextmanager
def https_trickling(ca: trustme.CA, every_s: float) -> Iterator[str]:
    """An HTTPS server for ``localhost`` that answers 200 to everything, then sends its
    (long) body one byte every ``every_s`` seconds until it is stopped; yields its base."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    stopping = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            with contextlib.suppress(OSError):
                while not stopping.wait(every_s):
                    self.wfile.write(b" ")
                    self.wfile.flush()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.socket = server_context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{httpd.server_address[1]}"
    finally:
        stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
