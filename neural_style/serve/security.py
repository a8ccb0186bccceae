"""What every request passes before the routes: the Host it names, the token, the origin of a change, the body size.

* **Host**: bound to this machine only, the server answers only requests naming it as ``localhost``, ``127.0.0.1``
  or ``[::1]``, so a web page elsewhere cannot reach it through a DNS name that points here (DNS rebinding).
* **Token**: when the server has one, every request carries it: ``Authorization: Bearer TOKEN``, or the cookie the
  page gets when opened as ``/?token=TOKEN`` (the browser then sends it with the previews and event streams), or a
  ``token`` query parameter. Otherwise 401.
* **Origin**: a request that changes something (POST, DELETE) sent by a browser from another site's page is refused
  (403), so a page elsewhere cannot create or cancel jobs through the user's browser.
* **Size**: a request body larger than the upload limits allow is refused (413) as it arrives.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["COOKIE", "LOOPBACK_HOSTS", "Guard"]

COOKIE = "neural_style_token"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
_UNSAFE = ("POST", "PUT", "PATCH", "DELETE")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def _host_name(host: str) -> str:
    """``example.org:8000`` -> ``example.org``; ``[::1]:8000`` -> ``::1``."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware applying the rules of the module docstring.

    Args:
        app: the application.
        token: the token every request must carry, or None.
        allowed_hosts: the host names a request may name in its Host header; None: any.
        request_bytes: the largest request body.
    """

    def __init__(self, app: App, *, token: str | None, allowed_hosts: Sequence[str] | None, request_bytes: int) -> None:
        self.app = app
        self.token = token
        self.allowed_hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}
        self.request_bytes = request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        host = headers.get("host", "")
        if self.allowed_hosts is not None and _host_name(host).lower() not in self.allowed_hosts:
            await _refuse(send, 400, f"the Host header '{host}' does not name this server; open it as localhost")
            return
        set_cookie = False
        if self.token is not None:
            given = self._token(scope, headers)
            if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
                why = "a token is needed" if given is None else "the token is wrong"
                await _refuse(
                    send,
                    401,
                    f"{why}: send 'Authorization: Bearer TOKEN', or open the page as /?token=TOKEN",
                    [(b"www-authenticate", b"Bearer")],
                )
                return
            set_cookie = scope["method"] == "GET" and scope["path"] == "/" and COOKIE not in _cookies(headers)
        if scope["method"] in _UNSAFE and "origin" in headers and urlsplit(headers["origin"]).netloc != host:
            await _refuse(send, 403, f"a request from the page of another site ({headers['origin']}) is refused")
            return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.request_bytes:
            await _refuse(send, 413, f"the request has {int(length)} bytes, more than the {self.request_bytes} allowed")
            return
        await self._forward(scope, receive, send, set_cookie)

    def _token(self, scope: Scope, headers: dict[str, str]) -> str | None:
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            return authorization[7:].strip()
        cookie = _cookies(headers).get(COOKIE)
        if cookie:
            return cookie
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
        return query[-1] if query else None

    async def _forward(self, scope: Scope, receive: Receive, send: Send, set_cookie: bool) -> None:
        """Passes the request on, counting its body: past the limit, the answer becomes 413."""
        received = 0
        exceeded = False
        started = False

        async def counted() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.request_bytes:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if exceeded:
                if not started:
                    started = True
                    await _refuse(send, 413, f"the request is larger than the {self.request_bytes} bytes allowed")
                return
            if message["type"] == "http.response.start":
                started = True
                if set_cookie:
                    assert self.token is not None
                    cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                    message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not exceeded:
                raise
            if not started:
                await _refuse(send, 413, f"the request is larger than the {self.request_bytes} bytes allowed")


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    cookies = {}
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            cookies[name] = value
    return cookies


async def _refuse(send: Send, status: int, message: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})
