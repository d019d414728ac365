"""Who may talk to the server: the loopback Host check and the optional bearer token.

- Bound to loopback, the server answers only requests whose Host header names the loopback
  (localhost, 127.x.x.x, [::1]). A web page elsewhere cannot then reach it through a DNS name it
  re-points at 127.0.0.1 (DNS rebinding); `curl` and the page itself send such a Host anyway.
- With a token, every route needs `Authorization: Bearer TOKEN` or the cookie the page gets by
  opening `/?token=TOKEN` once (HttpOnly, SameSite=Strict, and the token is taken out of the
  address by a redirect). Tokens are compared in constant time.
"""
import hmac
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.responses import JSONResponse, RedirectResponse

COOKIE = "serve_token"


def host_name(host):
    """The name part of a Host header: 'localhost:8000' -> 'localhost', '[::1]:80' -> '::1'."""
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback_name(name):
    name = name.lower()
    return name in ("localhost", "::1") or (name.startswith("127.") and
                                           all(p.isdigit() for p in name.split(".")))


class Guard:
    """ASGI middleware in front of the app (see module docstring)."""

    def __init__(self, app, token=None, loopback=True):
        self.app, self.token, self.loopback = app, token or None, loopback

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":            # lifespan events
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if self.loopback and not is_loopback_name(host_name(host)):
            return await JSONResponse({"error": f"Host {host!r} is not this loopback server; open "
                                                "it as http://127.0.0.1:PORT/"},
                                      status_code=400)(scope, receive, send)
        if self.token:
            query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
            given = dict(query).get("token")
            if given is not None and scope["path"] == "/" and self._same(given):
                rest = urlencode([(k, v) for k, v in query if k != "token"])
                response = RedirectResponse("/" + (f"?{rest}" if rest else ""), status_code=303)
                response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
                return await response(scope, receive, send)
            if not (self._same(_bearer(headers)) or self._same(_cookie(headers))):
                return await JSONResponse(
                    {"error": "this server needs its token: send the header Authorization: "
                              "Bearer TOKEN, or open /?token=TOKEN once in the browser"},
                    status_code=401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
        await self.app(scope, receive, send)

    def _same(self, given):
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())


def _bearer(headers):
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _cookie(headers):
    try:
        jar = SimpleCookie(headers.get("cookie", ""))
    except CookieError:
        return None
    return jar[COOKIE].value if COOKIE in jar else None
