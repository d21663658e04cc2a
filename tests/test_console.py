"""The console on `botkit serve`: off without BOTKIT_CONSOLE_TOKEN, 401 without the token, outcomes and
recent deliveries with it, message contents only with BOTKIT_CONSOLE_CONTENTS, and no secret, token or
signature on any page or in any log line."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

import botkit.testing.harness as harness
from botkit.testing.flow import BotFlow
from tests.support.browser import screenshot
from tests.support.menu_bot import make_bot

TOKEN = "console-token-" + "k3x9" * 6
COOKIE_NAME = "botkit_console"
PAGES = ["/console", "/console/outcomes", "/console/outcomes?days=30", "/console/deliveries"]


async def conversations(flow: BotFlow) -> None:
    """One answered conversation, one handed off (the contact's words: "hi", "track", "refund")."""
    await flow.send("hi")
    await flow.choose("track")
    other = flow.new_conversation()
    await other.send("hi")
    await other.choose("refund")


@pytest.fixture
def signatures(monkeypatch: Any) -> list[str]:
    """Every signature header the test's deliveries carried."""
    seen: list[str] = []
    real = harness.signed_headers

    def recording(secret: str, raw: bytes, *args: Any, **kwargs: Any) -> dict[str, str]:
        headers = real(secret, raw, *args, **kwargs)
        seen.extend(v for k, v in headers.items() if "signature" in k.lower())
        return headers

    monkeypatch.setattr(harness, "signed_headers", recording)
    return seen


async def test_the_console_is_off_without_its_token() -> None:
    async with BotFlow.start(make_bot()) as flow:
        async with httpx.AsyncClient(base_url=flow.server.url) as client:
            for path in PAGES:
                assert (await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})).status_code == 404


async def test_the_console_answers_401_without_the_token_and_shows_outcomes_with_it(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'botkit.db'}"
    async with BotFlow.start(make_bot(), teams="billing=3", store=store, botkit_console_token=TOKEN) as flow:
        await conversations(flow)
        async with httpx.AsyncClient(base_url=flow.server.url) as client:
            for path in PAGES:
                for headers in ({}, {"Authorization": "Bearer " + TOKEN[:-1] + "x"}, {"Authorization": TOKEN},
                                {"Cookie": "botkit_console=" + TOKEN}):
                    refused = await client.get(path, headers=headers)
                    assert refused.status_code == 401, (path, headers)
                    assert 'name="token"' in refused.text  # the login form, and nothing else
                    assert "Conversations taken" not in refused.text
            wrong = await client.post("/console/login", data={"token": "not-the-token-at-all"})
            assert wrong.status_code == 401 and "not the console token" in wrong.text

            shown = await client.get("/console/outcomes", headers={"Authorization": f"Bearer {TOKEN}"})
            assert shown.status_code == 200
            assert re.search(r'data-figure="conversations"><div class="value">2<', shown.text)
            assert re.search(r'data-figure="handed_off"><div class="value">1<', shown.text)
            assert re.search(r'data-figure="answered_without_handoff"><div class="value">1<', shown.text)

            login = await client.post("/console/login", data={"token": TOKEN})
            assert login.status_code == 303 and login.headers["location"] == "/console/outcomes"
            cookie = login.cookies[COOKIE_NAME]
            assert TOKEN not in login.headers["set-cookie"] and cookie
            assert "httponly" in login.headers["set-cookie"].lower()
            assert "samesite=strict" in login.headers["set-cookie"].lower()
        async with httpx.AsyncClient(base_url=flow.server.url, cookies={COOKIE_NAME: cookie}) as browser:
            deliveries = await browser.get("/console/deliveries")
            assert deliveries.status_code == 200
            assert deliveries.text.count('<details class="delivery') == 4
            assert "action: handoff (journal step 2) — handler" in deliveries.text
            assert "Message contents are hidden" in deliveries.text





class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_wrong_tokens_are_limited_per_address_with_429_and_retry_after(caplog: Any) -> None:
    from botkit.console import server as console_server
    from botkit.receiver import AddressLimiter

    caplog.set_level(logging.DEBUG)
    async with BotFlow.start(make_bot(), botkit_console_token=TOKEN) as flow:
        console = flow.server.app.state.console
        clock = FakeClock(1000.0)
        console.failures = AddressLimiter(console_server.LOGIN_PER_SECOND, console_server.LOGIN_BURST, clock=clock)
        async with httpx.AsyncClient(base_url=flow.server.url) as client:
            cookie = (await client.post("/console/login", data={"token": TOKEN})).cookies[COOKIE_NAME]
            client.cookies.clear()
            wrong = [f"guess-{n:02d}-" + "q" * 16 for n in range(console_server.LOGIN_BURST)]
            for n, guess in enumerate(wrong):  # the form and the Bearer header count alike
                answer = (await client.post("/console/login", data={"token": guess}) if n % 2 else
                          await client.get("/console/outcomes", headers={"Authorization": f"Bearer {guess}"}))
                assert answer.status_code == 401, n
            for attempt in ({"token": TOKEN}, {"token": "yet-another-guess-zzzz"}):  # even the right token now
                locked = await client.post("/console/login", data=attempt)
                assert locked.status_code == 429 and "Too many wrong tokens" in locked.text
                assert 1 <= int(locked.headers["retry-after"]) <= 60 and COOKIE_NAME not in locked.cookies
                assert TOKEN not in locked.text
            bearer = await client.get("/console/outcomes", headers={"Authorization": f"Bearer {TOKEN}"})
            assert bearer.status_code == 429 and "Conversations taken" not in bearer.text
            async with httpx.AsyncClient(base_url=flow.server.url, cookies={COOKIE_NAME: cookie}) as browser:
                assert (await browser.get("/console/outcomes")).status_code == 200  # a session still opens it
            clock.now += 61  # a minute later: one more try, and the right token opens the console again
            again = await client.post("/console/login", data={"token": TOKEN})
            assert again.status_code == 303 and again.cookies[COOKIE_NAME]
        assert console.failures.retry_after("127.0.0.2") == 0.0  # each address has its own budget
    warnings = [r.getMessage() for r in caplog.records if r.name == "botkit.console"]
    assert len(warnings) == 1 and "127.0.0.1" in warnings[0] and "too many wrong" in warnings[0]
    logged = "\n".join(record.getMessage() + repr(record.__dict__) for record in caplog.records)
    for secret in (TOKEN, *wrong):
        assert secret not in logged


async def test_a_login_lasts_the_session_hours_in_the_cookie_and_on_the_server() -> None:
    async with BotFlow.start(make_bot(), botkit_console_token=TOKEN) as flow:
        console = flow.server.app.state.console
        clock = FakeClock(1_800_000_000.0)
        console.clock = clock
        async with httpx.AsyncClient(base_url=flow.server.url) as client:
            login = await client.post("/console/login", data={"token": TOKEN})
            said = login.headers["set-cookie"].lower()
            assert "max-age=43200" in said and "httponly" in said and "samesite=strict" in said
            assert "path=/console" in said and "secure" not in said  # plain HTTP here
            cookie = login.cookies[COOKIE_NAME]
            assert TOKEN not in cookie
            proxied = await client.post("/console/login", data={"token": TOKEN},
                                        headers={"X-Forwarded-Proto": "https"})  # a TLS proxy on 127.0.0.1
            assert "secure" in proxied.headers["set-cookie"].lower()
            client.cookies.clear()

        async def page(value: str) -> httpx.Response:
            async with httpx.AsyncClient(base_url=flow.server.url, cookies={COOKIE_NAME: value}) as browser:
                return await browser.get("/console/outcomes")

        clock.now += 12 * 3600 - 1
        assert (await page(cookie)).status_code == 200
        clock.now += 1  # 12 h after the login: the server refuses it, whatever the browser kept
        expired = await page(cookie)
        assert expired.status_code == 401 and 'name="token"' in expired.text
        issued, _, signature = cookie.partition(".")
        assert (await page(f"{int(issued) + 3600}.{signature}")).status_code == 401  # a moved date: a bad HMAC
        before = hmac.new(TOKEN.encode(), b"botkit console session", hashlib.sha256).hexdigest()
        assert (await page(before)).status_code == 401  # the cookie of old, which never expired
    async with BotFlow.start(make_bot(), botkit_console_token=TOKEN, botkit_console_session_hours=1) as flow:
        async with httpx.AsyncClient(base_url=flow.server.url) as client:
            login = await client.post("/console/login", data={"token": TOKEN})
            assert "max-age=3600" in login.headers["set-cookie"].lower()


async def test_no_page_and_no_log_line_carries_a_secret(tmp_path: Path, caplog: Any, signatures: list[str]) -> None:
    caplog.set_level(logging.DEBUG)
    store = f"sqlite:///{tmp_path / 'botkit.db'}"
    async with BotFlow.start(make_bot(), teams="billing=3", store=store, botkit_console_token=TOKEN,
                             openai_api_key="sk-test-" + "z" * 24) as flow:
        await conversations(flow)
        fake = flow.fake
        secrets = {"webhook secret": fake.bot_secret, "bot token": fake.bot_token, "admin token": fake.admin_token,
                   "console token": TOKEN, "OpenAI key": "sk-test-" + "z" * 24}
        secrets.update({f"signature {n}": s for n, s in enumerate(signatures)})
        assert len(signatures) >= 4
        async with httpx.AsyncClient(base_url=flow.server.url, follow_redirects=True) as client:
            pages = {}
            for path in PAGES:
                pages[path] = (await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})).text
                pages[path + " (no token)"] = (await client.get(path)).text
            pages["login"] = (await client.post("/console/login", data={"token": TOKEN})).text
            pages["login (wrong)"] = (await client.post("/console/login", data={"token": TOKEN + "x"})).text
    assert "Recent deliveries" in pages["/console/deliveries"]
    for name, page in pages.items():
        for what, secret in secrets.items():
            assert secret not in page, f"the {what} is on the page {name}"
        for words in ("hi", "track", "refund"):  # contents are off: the contact's words are nowhere
            assert f"“{words}”" not in page
    logged = "\n".join(record.getMessage() + repr(record.__dict__) for record in caplog.records)
    assert logged
    for what, secret in secrets.items():
        assert secret not in logged, f"the {what} is in the logs"


async def test_message_contents_only_with_their_setting(tmp_path: Path) -> None:
    async with BotFlow.start(make_bot(), teams="billing=3", botkit_console_token=TOKEN,
                             botkit_console_contents=True) as flow:
        await conversations(flow)
        async with httpx.AsyncClient(base_url=flow.server.url) as client:
            page = (await client.get("/console/deliveries", headers={"Authorization": f"Bearer {TOKEN}"})).text
    assert "“hi”" in page and "“Track my order”" in page and "Message contents are hidden" not in page


async def test_the_console_in_a_browser(browser_page: Any, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'botkit.db'}"
    async with BotFlow.start(make_bot(), teams="billing=3", store=store, botkit_console_token=TOKEN) as flow:
        await conversations(flow)
        page = browser_page
        response = await page.goto(flow.server.url + "/console")
        assert response.status == 401
        await page.fill("input[name=token]", TOKEN)
        await page.click("button[type=submit]")
        await page.locator('[data-figure="conversations"] .value', has_text="2").wait_for()
        assert await page.locator('svg rect.bar[data-label="handler"]').count() == 1
        await screenshot(page, tmp_path, "console-outcomes")
        await page.click("text=Recent deliveries")
        await page.locator("details.delivery summary", has_text="message_updated").first.wait_for()
        assert await page.locator("details.delivery").count() == 4
        await screenshot(page, tmp_path, "console-deliveries")


async def test_a_browser_locked_out_after_wrong_tokens_reads_when_to_try_again(browser_page: Any,
                                                                                 tmp_path: Path) -> None:
    from botkit.console.server import LOGIN_BURST

    async with BotFlow.start(make_bot(), botkit_console_token=TOKEN) as flow:
        page = browser_page
        await page.goto(flow.server.url + "/console")
        for n in range(LOGIN_BURST):
            await page.fill("input[name=token]", f"wrong-token-number-{n}")
            async with page.expect_response("**/console/login") as answer:
                await page.click("button[type=submit]")
            assert (await answer.value).status == 401
        await page.fill("input[name=token]", TOKEN)
        async with page.expect_response("**/console/login") as answer:
            await page.click("button[type=submit]")
        locked = await answer.value
        assert locked.status == 429 and 1 <= int(locked.headers["retry-after"]) <= 60
        await page.locator("text=Too many wrong tokens from your address").wait_for()
        assert await page.locator("input[name=token]").count() == 0
        await screenshot(page, tmp_path, "console-locked-out")


def test_botkit_serve_shows_the_worker_process_outcomes_and_logs_no_secret(server_process: Any,
                                                                            tmp_path: Path) -> None:
    """The real `botkit serve`: its worker child writes the SQLite file, the web process reads it."""
    import time

    from botkit.testing.fake_chatwoot import FakeChatwoot
    from tests.conftest import SECRET, message, signed

    fake = FakeChatwoot()
    fake.bot.secret = SECRET
    fake.add_conversation(1, 128)
    with fake.serve_in_thread():
        server = server_process(CHATWOOT_BASE_URL=fake.url, CHATWOOT_BOT_TOKEN=fake.bot_token,
                                BOTKIT_STORE=f"sqlite:///{tmp_path / 'botkit.db'}",
                                BOTKIT_BOT="tests.support.menu_bot:bot",
                                BOTKIT_CONSOLE_TOKEN=TOKEN, BOTKIT_LOG_LEVEL="DEBUG")
        assert httpx.get(server.url + "/console/outcomes").status_code == 401
        raw, headers = signed(message(128, 501, "hi"), delivery_id="d-1")
        assert httpx.post(server.url + "/webhook", content=raw, headers=headers).status_code == 200
        deadline = time.monotonic() + 30
        page = ""
        while time.monotonic() < deadline:
            page = httpx.get(server.url + "/console/outcomes", headers={"Authorization": f"Bearer {TOKEN}"}).text
            if re.search(r'data-figure="conversations"><div class="value">1<', page):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the console never showed the conversation:\n{server.log.read_text()}")
        deliveries = httpx.get(server.url + "/console/deliveries", headers={"Authorization": f"Bearer {TOKEN}"})
        assert "handler: menu" in deliveries.text
        assert server.terminate() in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has drained
    logged = server.log.read_text()
    assert "handling" in logged  # DEBUG lines were written
    for what, secret in {"console token": TOKEN, "webhook secret": SECRET, "bot token": fake.bot_token,
                         "signature": next(v for k, v in headers.items() if "ignature" in k)}.items():
        assert secret not in logged, f"the {what} is in the server's log"
        assert secret not in page and secret not in deliveries.text, f"the {what} is on a page"
