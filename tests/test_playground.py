"""`botkit playground` in a real headless browser: the contact's side, the agent's side, the channel switch.

The page is served by uvicorn on 127.0.0.1 in the test's loop; the bot (bots/showcase.py) runs for real
against the fake Chatwoot, so what the page shows is what the bot did through the real client.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from botkit.console.playground import Playground
from botkit.testing.server import serve_app
from bots.showcase import make_bot
from tests.support.browser import screenshot

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def playground() -> Any:
    async with Playground(make_bot(), teams="billing=3") as playground:
        async with serve_app(playground.app, lifespan="off") as url:
            playground.url = url
            yield playground


async def say(page: Any, text: str) -> None:
    await page.fill("#message", text)
    await page.click("#composer button")


async def test_the_contact_types_and_sees_the_reply_then_picks_an_option(browser_page: Any, playground: Any,
                                                                         tmp_path: Path) -> None:
    page = browser_page
    await page.goto(playground.url + "/")
    await say(page, "hello")
    bubble = page.locator(".bubble.bot", has_text="Hi! I'm the showcase bot.")
    await bubble.wait_for()
    menu = page.locator(".bubble.bot", has_text="What can I help you with?")
    await menu.locator("button.option").nth(3).wait_for()  # the menu may render a poll after what came before
    assert await menu.locator("button.option").all_inner_texts() == [
        "Track an order", "Billing question", "Our products", "Talk to a human"]
    await menu.locator("button.option", has_text="Track an order").click()
    await page.locator(".bubble.bot", has_text="Your order #1042 left our warehouse today").wait_for()
    # the widget's way back: message_updated with submitted_values on the bot's own message
    picked = playground.flow.fake.messages(playground.flow.conversation_id)
    menu_message = next(m for m in picked if m["content_type"] == "input_select")
    assert menu_message["content_attributes"]["submitted_values"] == [{"title": "Track an order", "value": "track"}]
    await page.locator("#labels .pill", has_text="orders").wait_for()
    assert await page.locator(".bubble.contact").all_inner_texts() == ["hello"]
    # the timeline of the pick: its event, the policies' decision, the handler, each action with its step
    latest = page.locator("#timeline details.delivery").first
    await latest.locator("summary", has_text="message_updated").wait_for()
    steps = await latest.locator("li.step").all_inner_texts()
    assert steps[1] == "policy: admitted"
    assert any(s.startswith("handler: track") for s in steps)
    assert any(re.match(r"action: reply \(journal step 0\) · [\d.]+ ms", s) for s in steps), steps
    assert any(re.match(r"action: add_labels \(journal step 1\)", s) for s in steps), steps
    await screenshot(page, tmp_path, "playground", readme=True)


async def test_the_agent_side_shows_the_team_and_the_handoff_note(browser_page: Any, playground: Any,
                                                                  tmp_path: Path) -> None:
    page = browser_page
    await page.goto(playground.url + "/")
    await say(page, "hi")
    await page.locator("button.option", has_text="Billing question").click()
    await page.locator(".bubble.bot", has_text="I'm passing you to our billing team").wait_for()
    await page.locator("#team", has_text="billing").wait_for()
    await page.locator("#status .pill", has_text="open").wait_for()
    handoff = page.locator("#handoffs .handoff")
    await handoff.wait_for()
    assert "Summary: the contact has a billing question" in await handoff.inner_text()
    assert "by billing" in await handoff.inner_text()
    assert "Summary: the contact has a billing question" in await page.locator("#notes").inner_text()
    # the contact never sees the private note
    assert "Summary" not in await page.locator("#chat").inner_text()
    # an agent note goes to the bot as Chatwoot delivers it; the bot stays silent in an open conversation
    await page.fill("#agent-text", "I'll take it from here.")
    await page.click("#agent-form button[type=submit]")
    await page.locator("#notes .note.agent", has_text="I'll take it from here.").wait_for()
    await page.locator("#timeline summary", has_text="message_created").first.wait_for()
    assert (await page.locator("#timeline li.step").first.inner_text()).startswith("waited")
    await page.click("button[data-agent=resolve]")
    await page.locator("#status .pill", has_text="resolved").wait_for()
    await screenshot(page, tmp_path, "playground-agent")


async def test_the_whatsapp_contact_gets_the_menu_as_a_list_and_answers_with_its_title(
        browser_page: Any, playground: Any, tmp_path: Path) -> None:
    page = browser_page
    await page.goto(playground.url + "/")
    await page.locator("#channel option").first.wait_for(state="attached")
    await page.select_option("#channel", "Channel::Whatsapp")
    await page.locator("#phone.look-whatsapp").wait_for()
    await say(page, "hi")
    menu = page.locator(".bubble.bot", has_text="What can I help you with?")
    await menu.wait_for()
    # four items: WhatsApp shows a list behind Chatwoot's button, not four buttons
    opener = menu.locator("button.list-button")
    assert (await opener.inner_text()).endswith("Choose an item")
    assert await menu.locator(".list-rows").is_hidden()
    await opener.click()
    assert await menu.locator("button.list-row").all_inner_texts() == [
        "Track an order", "Billing question", "Our products", "Talk to a human"]
    await screenshot(page, tmp_path, "playground-whatsapp")
    await menu.locator("button.list-row", has_text="Talk to a human").click()
    await page.locator(".bubble.bot", has_text="a person will be with you shortly").wait_for()
    # a WhatsApp tap is a new incoming message carrying the item's title
    contact = await page.locator(".bubble.contact").all_inner_texts()
    assert contact == ["hi", "Talk to a human"]
    assert playground.flow.channel == "Channel::Whatsapp"


async def test_a_telegram_contact_gets_a_keyboard_and_taps_send_the_value(browser_page: Any, playground: Any,
                                                                           tmp_path: Path) -> None:
    page = browser_page
    await page.goto(playground.url + "/")
    await page.locator("#channel option").first.wait_for(state="attached")
    await page.select_option("#channel", "Channel::Telegram")
    await page.locator("#phone.look-telegram").wait_for()
    await say(page, "hi")
    menu = page.locator(".bubble.bot", has_text="What can I help you with?")
    await menu.locator("button.option").nth(3).wait_for()  # the menu may render a poll after what came before
    assert await menu.locator("button.option").all_inner_texts() == [
        "Track an order", "Billing question", "Our products", "Talk to a human"]  # one button per item
    await menu.locator("button.option", has_text="Track an order").click()
    await page.locator(".bubble.bot", has_text="Your order #1042").wait_for()
    # a Telegram tap is a new incoming message carrying the item's value (callback_data)
    assert await page.locator(".bubble.contact").all_inner_texts() == ["hi", "track"]
    await screenshot(page, tmp_path, "playground-telegram")


async def test_rich_messages_look_like_the_widget_and_a_form_goes_back_as_submitted_values(
        browser_page: Any, playground: Any, tmp_path: Path) -> None:
    page = browser_page
    await page.goto(playground.url + "/")
    await say(page, "products")
    card = page.locator(".card", has_text="Starter plan")
    await card.wait_for()
    assert await card.locator("img").get_attribute("src") is not None
    assert await card.locator("a.card-action").get_attribute("href") == "https://example.com/plans/starter"
    await say(page, "help")
    await page.locator("a.article", has_text="Resetting your password").wait_for()
    await say(page, "form")
    form = page.locator("form.rich-form")
    await form.wait_for()
    await form.locator("input[name=name]").fill("Jane")
    await form.locator("input[name=email]").fill("jane@example.com")
    await form.locator("button").click()
    await page.locator(".bubble.bot", has_text="Thanks, we have your details.").wait_for()
    forms = [m for m in playground.flow.conversation.messages if m["content_type"] == "form"]
    assert forms[0]["content_attributes"]["submitted_values"] == [
        {"name": "name", "value": "Jane"}, {"name": "email", "value": "jane@example.com"}]
    await say(page, "email")
    email = page.locator("form.email-input")
    await email.wait_for()
    await email.locator("input").fill("jane@example.com")
    await email.locator("button").click()
    await page.locator(".bubble.bot", has_text="Thanks, we have your details.").nth(1).wait_for()
    await screenshot(page, tmp_path, "playground-rich")


async def test_actions_need_the_playground_header_and_a_loopback_host(playground: Any) -> None:
    async with httpx.AsyncClient(base_url=playground.url) as client:
        refused = await client.post("/api/contact", json={"text": "hi"})
        assert refused.status_code == 403
        rebound = await client.get("/api/state", headers={"Host": "evil.example.com"})
        assert rebound.status_code == 403
        bad = await client.post("/api/channel", json={"channel": "Channel::Pigeon"}, headers={"X-Playground": "1"})
        assert bad.status_code == 400 and "Channel::Pigeon" in bad.json()["error"]
        ok = await client.post("/api/contact", json={"text": "hi"}, headers={"X-Playground": "1"})
        assert ok.status_code == 200
        assert [m["side"] for m in ok.json()["messages"]] == ["contact", "bot", "bot"]


def test_botkit_playground_serves_the_page_on_loopback(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    from botkit.testing.redis_server import free_port

    port = free_port()
    env = {**os.environ, "BOTKIT_STORE": "memory://"}
    process = subprocess.Popen([sys.executable, "-m", "botkit.cli", "playground", "bots.showcase", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=env)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"open http://127.0.0.1:{port}/" in line, line
        page = httpx.get(f"http://127.0.0.1:{port}/")
        assert page.status_code == 200 and "botkit playground" in page.text
        state = httpx.get(f"http://127.0.0.1:{port}/api/state").json()
        assert state["bot"] == "showcase" and state["channel"]["type"] == "Channel::WebWidget"
        assert httpx.get(f"http://127.0.0.1:{port}/static/playground.js").status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
    assert process.returncode == 0


async def test_the_browsers_request_for_an_icon_is_no_error(playground: Any) -> None:
    # A new user's browser console showed "Failed to load resource: 404" for /favicon.ico on the first reply.
    async with httpx.AsyncClient(base_url=playground.url) as client:
        assert (await client.get("/favicon.ico")).status_code == 204
