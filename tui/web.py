"""`heapwatch --web`: the dashboard in a browser, through textual-serve, behind a token.

textual-serve runs the command once per page (each page is its own session, its own engine),
but its own socket checks nothing: any page the user opens in the same browser could drive it.
So this server adds two checks in front of it:

- the page (`/`) and its websocket answer only with the random token printed in the URL
  (compared in constant time); the websocket's URL carries it in its path, because the page's
  script appends its own `?width=..&height=..` query to that URL;
- the websocket also refuses a request whose Origin is not this server's own, and any request
  whose Host is not one this server was asked to serve (a DNS-rebinding page has the wrong Host).

Loopback by default; another host only when asked, with a warning that the stream is plain HTTP.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import secrets
import shlex
import signal
import sys
from collections.abc import Sequence
from typing import Any, TextIO
from urllib.parse import urlsplit

__all__ = ["WebAddressError", "parse_address", "serve_web"]

DEFAULT_PORT = 8000


class WebAddressError(ValueError):
    """A `--web [HOST:]PORT` value that is not one."""


def parse_address(text: str) -> tuple[str, int]:
    """'8000' -> ('127.0.0.1', 8000); 'HOST:PORT' -> (HOST, PORT); '[::1]:8000' too."""
    host, _, port_text = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise WebAddressError(f"--web takes [HOST:]PORT, not {text!r}") from None
    if not 0 <= port <= 65535:
        raise WebAddressError(f"--web port must be 0 to 65535, not {port}")
    return host, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _make_server(command: str, host: str, port: int, token: str) -> Any:
    # textual-serve (and aiohttp) are the [web] extra: imported only when --web is used.
    from aiohttp import web
    from textual_serve.server import Server

    class GuardedServer(Server):
        """textual-serve's Server with a token on the page and the socket, and Origin/Host checks."""

        allowed_hosts: set[str] = set()

        def _host_ok(self, request: web.Request) -> bool:
            return request.host in self.allowed_hosts

        def _token_ok(self, given: str | None) -> bool:
            return given is not None and hmac.compare_digest(given.encode(), token.encode())

        async def _make_app(self) -> web.Application:
            import aiohttp_jinja2
            import jinja2

            app = web.Application()
            aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(self.templates_path))
            app.add_routes(
                [
                    web.get("/", self.guarded_index, name="index"),
                    web.get("/ws/{token}", self.guarded_websocket, name="websocket"),
                    web.get("/download/{key}", self.handle_download, name="download"),
                    web.static("/static", self.statics_path, name="static"),
                ]
            )
            app.on_startup.append(self.on_startup)
            return app

        async def guarded_index(self, request: web.Request) -> web.StreamResponse:
            if not self._host_ok(request):
                raise web.HTTPMisdirectedRequest(text="unknown host\n")
            if not self._token_ok(request.query.get("token")):
                raise web.HTTPForbidden(text="heapwatch: this page needs the URL with its token\n")
            import aiohttp_jinja2

            websocket = f"{self.public_url}/ws/{token}".replace("http", "ws", 1)
            context = {
                "font_size": 16,
                "app_websocket_url": websocket,
                "config": {"static": {"url": f"{self.public_url}/static/"}},
                "application": {"name": self.title},
            }
            return aiohttp_jinja2.render_template("app_index.html", request, context)

        async def guarded_websocket(self, request: web.Request) -> web.StreamResponse:
            origin = request.headers.get("Origin")
            if not self._host_ok(request) or not self._token_ok(request.match_info["token"]):
                raise web.HTTPForbidden(text="forbidden\n")
            if origin is None or urlsplit(origin).netloc != request.host:
                raise web.HTTPForbidden(text="forbidden origin\n")
            return await self.handle_websocket(request)

        async def on_startup(self, app: web.Application) -> None:
            pass  # the command prints its own line, with the token

    return GuardedServer(command, host=host, port=port, title="heapwatch")


async def _run(
    server: Any, host: str, port: int, token: str, out: TextIO, err: TextIO
) -> int:
    from aiohttp import web

    # Signal handlers first: a SIGTERM right after the URL is printed must stop us cleanly.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    app = await server._make_app()
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        print(f"heapwatch: cannot serve on {_url_host(host)}:{port}: {exc.strerror}", file=err)
        return 2
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    public = f"http://{_url_host(host)}:{bound}"
    server.public_url = public
    server.allowed_hosts = {f"{_url_host(host)}:{bound}"}
    if is_loopback(host):
        server.allowed_hosts |= {f"localhost:{bound}", f"127.0.0.1:{bound}", f"[::1]:{bound}"}
    else:
        print(
            f"heapwatch: warning: serving on {host}, not loopback: the stream is plain HTTP,"
            " anyone who sees the URL can drive the dashboard",
            file=err,
        )
    print(f"heapwatch: the dashboard is at {public}/?token={token}  (Ctrl+C stops)", file=out)
    out.flush()
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
    return 0


def serve_web(
    argv: Sequence[str],
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    token: str | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Serve `heapwatch ARGV` (the dashboard, one process per page) until SIGINT or SIGTERM.

    Returns the exit status: 0 after a signal, 2 when the address cannot be served.
    """
    token = token or secrets.token_urlsafe(24)
    command = shlex.join([sys.executable, "-m", "tui.cli", *argv])
    server = _make_server(command, host, port, token)
    return asyncio.run(_run(server, host, port, token, out, err))
