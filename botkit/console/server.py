"""The console on `botkit serve`: the outcomes page and a read-only timeline of recent deliveries.

Off unless BOTKIT_CONSOLE_TOKEN is set (then `/console` exists at all). Every page asks for that token:
`Authorization: Bearer <token>`, or the login form, which sets a session cookie `<issued>.<HMAC keyed by the
token of "botkit console session <issued>">` (never the token itself; HttpOnly, SameSite=Strict,
Path=/console, Secure over HTTPS, including behind a proxy uvicorn trusts for X-Forwarded-Proto). A session
lasts BOTKIT_CONSOLE_SESSION_HOURS (12 by default): the cookie's Max-Age, and the server refuses an older
`issued` whatever the browser keeps. Changing the token ends every session. Both are compared in constant
time (`hmac.compare_digest`), and the token is in no page, log line or error. Anything else gets 401 and the
login form. The console only reads: it changes nothing in the store or in Chatwoot.

Wrong tokens (the login form or a Bearer header) are limited per client address: LOGIN_BURST at once, then
one a minute (`botkit.receiver.AddressLimiter`, per process). Past that the address gets 429 with Retry-After,
whatever token it sends, and one warning names the address (never what it sent). A valid session cookie
still opens the pages.

Message contents are shown only with BOTKIT_CONSOLE_CONTENTS=true; otherwise the timelines say what the bot
did, never what anyone wrote. The pages are drawn on the server (no script); the stylesheet is inlined.
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from botkit import timeline
from botkit.console import outcomes_page
from botkit.figures import DAY, from_store
from botkit.receiver import AddressLimiter

log = logging.getLogger("botkit.console")

COOKIE = "botkit_console"
RECENT = 100  # deliveries the timeline page shows
LOGIN_BURST = 10  # wrong tokens an address may send at once...
LOGIN_PER_SECOND = 1 / 60  # ...and then one a minute


class Console:
    def __init__(self, settings: Any, store: Any) -> None:
        assert settings.botkit_console_token is not None
        self._token = settings.botkit_console_token.get_secret_value().encode()
        self.session_seconds = int(settings.botkit_console_session_hours * 3600)
        self.clock = time.time  # for sessions; the limiter keeps its own monotonic clock
        self.failures = AddressLimiter(LOGIN_PER_SECOND, LOGIN_BURST)
        self.store = store
        self.contents = bool(settings.botkit_console_contents)
        self.prices = settings.model_prices

    def routes(self) -> list[Route]:
        return [Route("/console", self.home, methods=["GET"]),
                Route("/console/login", self.login, methods=["POST"]),
                Route("/console/outcomes", self.outcomes, methods=["GET"]),
                Route("/console/deliveries", self.deliveries, methods=["GET"])]

    # who may look -------------------------------------------------------------------------------------
    def gate(self, request: Request) -> Response | None:
        """None when the request may see the pages, else the answer: 401 and the login form, or 429."""
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and given:
            return self._check(request, given.strip().encode())
        cookie = request.cookies.get(COOKIE)
        return None if cookie is not None and self._valid_session(cookie) else self.refused()

    def _check(self, request: Request, given: bytes) -> Response | None:
        """A token given (Bearer or the form): None when right; a wrong one is counted against the address."""
        address = request.client.host if request.client else "-"
        wait = self.failures.retry_after(address)
        if wait > 0:  # refused unread: a locked-out address learns nothing about the token
            return self.too_many(wait)
        if hmac.compare_digest(given, self._token):
            return None
        self.failures.allow(address)
        wait = self.failures.retry_after(address)
        if wait > 0:
            log.warning("the console refuses tokens from %s for %d s: too many wrong ones", address, math.ceil(wait))
        return self.refused(wrong=True)

    def session(self) -> str:
        """A new session cookie's value: when it was issued, and its HMAC keyed by the token."""
        issued = str(int(self.clock()))
        return f"{issued}.{self._sign(issued)}"

    def _sign(self, issued: str) -> str:
        return hmac.new(self._token, b"botkit console session " + issued.encode(), "sha256").hexdigest()

    def _valid_session(self, cookie: str) -> bool:
        issued, _, signature = cookie.partition(".")
        if not issued.isdigit() or not hmac.compare_digest(signature.encode(), self._sign(issued).encode()):
            return False
        age = self.clock() - int(issued)
        return -60 <= age < self.session_seconds  # a minute's grace for a clock stepped back

    def too_many(self, wait: float) -> Response:
        seconds = math.ceil(wait)
        body = (f'<h1>botkit console</h1><p class="muted">Too many wrong tokens from your address: try again in '
                f'{seconds} s.</p>')
        return HTMLResponse(_page("botkit console", body), status_code=429,
                            headers={"Retry-After": str(seconds), "Cache-Control": "no-store"})

    def refused(self, wrong: bool = False) -> Response:
        said = '<p class="muted">That is not the console token.</p>' if wrong else ""
        body = (f'<h1>botkit console</h1>{said}<form method="post" action="/console/login">'
                '<label>Console token (BOTKIT_CONSOLE_TOKEN) <input type="password" name="token" '
                'autocomplete="current-password" required></label> <button type="submit">Open</button></form>')
        return HTMLResponse(_page("botkit console", body), status_code=401,
                            headers={"WWW-Authenticate": 'Bearer realm="botkit console"', "Cache-Control": "no-store"})

    async def login(self, request: Request) -> Response:
        body = await request.body()  # a urlencoded form of one field (Starlette's form parser needs another package)
        given = (parse_qs(body[:4096].decode(errors="replace")).get("token") or [""])[0].strip().encode()
        refused = self._check(request, given)
        if refused is not None:
            return refused
        response = RedirectResponse("/console/outcomes", status_code=303)
        response.set_cookie(COOKIE, self.session(), max_age=self.session_seconds, httponly=True,
                            samesite="strict", path="/console", secure=request.url.scheme == "https")
        return response

    # pages --------------------------------------------------------------------------------------------
    async def home(self, request: Request) -> Response:
        refused = self.gate(request)
        if refused is not None:
            return refused
        return RedirectResponse("/console/outcomes", status_code=303)

    async def outcomes(self, request: Request) -> Response:
        refused = self.gate(request)
        if refused is not None:
            return refused
        days = 30 if request.query_params.get("days") == "30" else 7
        until = (int(time.time() // DAY) + 1) * DAY
        report = await from_store(self.store, since=until - days * DAY, until=until, prices=self.prices)
        return HTMLResponse(outcomes_page.html(report, title=f"botkit outcomes, last {days} days", nav=_nav()),
                            headers={"Cache-Control": "no-store"})

    async def deliveries(self, request: Request) -> Response:
        refused = self.gate(request)
        if refused is not None:
            return refused
        records = await self.store.records("delivery", limit=RECENT)
        rows = "".join(self._delivery(r.at, r.data) for r in reversed(records)) or (
            '<p class="muted">No delivery yet.</p>')
        note = ("" if self.contents else
                '<p class="muted">Message contents are hidden (BOTKIT_CONSOLE_CONTENTS=true shows them).</p>')
        body = f"{_nav()}<h1>Recent deliveries</h1>{note}<div class=\"timeline\">{rows}</div>"
        return HTMLResponse(_page("botkit deliveries", body, main_class="outcomes"),
                            headers={"Cache-Control": "no-store"})

    def _delivery(self, at: float, data: dict[str, Any]) -> str:
        when = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        steps = [f'<li class="step wait">waited in the queue {escape(str(data.get("waited_ms")))} ms</li>']
        for step in data.get("steps") or []:
            steps.append(f'<li class="step {escape(str(step.get("kind")))}">{escape(timeline.describe(step))}</li>')
        if data.get("error"):
            steps.append(f'<li class="step error">failed: {escape(str(data["error"]))}</li>')
        said = ""
        if self.contents and data.get("text"):
            said = f'<div class="said">“{escape(str(data["text"]))}”</div>'
        head = (f"<strong>{escape(str(data.get('event')))}</strong> "
                f"<span class=\"muted\">{escape(when)} UTC · bot {escape(str(data.get('bot')))} · conversation "
                f"{escape(str(data.get('conversation_id')))} · attempt {escape(str(data.get('attempt')))}"
                f"{' → ' + escape(str(data['handler'])) if data.get('handler') else ''} · "
                f"{escape(str(data.get('ms')))} ms</span>")
        failed = " failed" if data.get("error") else ""
        return (f'<details class="delivery{failed}" open><summary>{head}</summary>{said}'
                f'<ol class="steps">{"".join(steps)}</ol></details>')


def _nav() -> str:
    return ('<nav><a href="/console/outcomes">Outcomes, 7 days</a><a href="/console/outcomes?days=30">30 days</a>'
            '<a href="/console/deliveries">Recent deliveries</a></nav>')


def _page(title: str, body: str, *, main_class: str = "outcomes") -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<style>{outcomes_page.STYLESHEET.read_text()}</style></head><body>'
            f'<main class="{main_class}">{body}</main></body></html>')


def add_console(app: Any, settings: Any, store: Any) -> None:
    """Serve the console on `app` when BOTKIT_CONSOLE_TOKEN is set; otherwise do nothing."""
    if settings.botkit_console_token is None:
        return
    app.state.console = Console(settings, store)
    app.router.routes.extend(app.state.console.routes())
