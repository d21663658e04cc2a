"""`botkit kb sync`: the Help Center's published articles reach the index, incrementally, over a real socket
to the fake Chatwoot (which answers as app/controllers/api/v1/accounts/articles_controller.rb does)."""

from __future__ import annotations

from pathlib import Path

import pytest

from botkit.cli import main
from botkit.knowledge import KnowledgeBase, SQLiteIndex
from botkit.testing.fake_chatwoot import FakeChatwoot


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    fake = FakeChatwoot()
    with fake.serve_in_thread():
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("BOTKIT_STORE", f"sqlite:///{tmp_path / 'botkit.db'}")
        monkeypatch.setenv("CHATWOOT_BASE_URL", fake.url)
        monkeypatch.setenv("CHATWOOT_ADMIN_TOKEN", fake.admin_token)
        monkeypatch.delenv("BOTKIT_KB_EMBEDDINGS", raising=False)
        yield fake


def index(tmp_path: Path) -> KnowledgeBase:
    return KnowledgeBase(SQLiteIndex(str(tmp_path / "botkit.db")))


def synced(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, list[str]]:
    assert main(["kb", "sync", *args]) == 0
    found: dict[str, list[str]] = {"added": [], "updated": [], "removed": []}
    for line in capsys.readouterr().out.splitlines():
        kind, doc_id = line.split("\t")
        if doc_id.startswith("helpcenter:"):  # not the hand-off examples seeded at the first add
            found[kind].append(doc_id)
    return found


def test_added_updated_unpublished_and_deleted_articles_reach_the_index(
        fake: FakeChatwoot, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake.add_portal("docs", name="Docs")
    many = [fake.add_article("docs", f"Topic {n}", f"Everything about topic number {n}.") for n in range(30)]
    reset = fake.add_article("docs", "Reset your password", "Open Settings, then Security, and choose Reset.",
                             description="Passwords")
    fake.add_article("docs", "Unreleased feature", "Coming soon: teleportation.", status="draft")
    fake.add_portal("old", archived=True)
    fake.add_article("old", "Old portal", "Retired content about fax machines.")

    first = synced(capsys)
    assert len(first["added"]) == 31  # two pages of 25: every published article, no draft, no archived portal
    kb = index(tmp_path)
    found = kb.search("reset password")
    assert found.verdict == "answer"
    assert found.best.passage.link == f"{fake.url}/hc/docs/articles/{reset.slug}"
    assert found.best.passage.language == "en" and found.best.passage.extra["description"] == "Passwords"
    assert kb.search("teleportation").verdict == "unanswered"
    assert kb.search("fax machines").verdict == "unanswered"

    fake.update_article(reset.id, content="Call our support line to reset your password.")
    fake.update_article(many[0].id, status="draft")  # unpublished
    fake.update_article(many[1].id, status="archived")
    fake.delete_article(many[2].id)
    new = fake.add_article("docs", "Refunds", "Refunds reach your card within 14 days.")
    second = synced(capsys)
    assert second["added"] == [f"helpcenter:docs:{new.id}"]
    assert second["updated"] == [f"helpcenter:docs:{reset.id}"]
    assert sorted(second["removed"]) == sorted(f"helpcenter:docs:{a.id}" for a in many[:3])
    assert "support line" in index(tmp_path).search("reset password").best.passage.text
    assert index(tmp_path).search("topic number 0").best.passage.title != "Topic 0"

    assert synced(capsys) == {"added": [], "updated": [], "removed": []}  # nothing changed: nothing re-indexed


def test_sync_of_one_portal_leaves_the_others_and_a_missing_portal_is_named(
        fake: FakeChatwoot, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake.add_portal("docs")
    fake.add_article("docs", "Shipping", "Parcels leave within two days.")
    fake.add_portal("legal", custom_domain="help.example.com")
    terms = fake.add_article("legal", "Terms", "Our terms of service apply to every order.")
    assert len(synced(capsys, "--portal", "legal")["added"]) == 1
    kb = index(tmp_path)
    assert kb.search("terms of service").best.passage.link == f"https://help.example.com/hc/legal/articles/{terms.slug}"
    assert kb.search("parcels leave").verdict == "unanswered"
    assert len(synced(capsys)["added"]) == 1  # docs now; legal unchanged

    assert main(["kb", "sync", "--portal", "nope"]) == 2
    assert "account 1 has no Help Center portal with the slug 'nope'" in capsys.readouterr().err

    fake.portals.pop("legal")  # a portal deleted: its articles go at the next full sync
    assert synced(capsys)["removed"] == [f"helpcenter:legal:{terms.id}"]


def test_sync_asks_for_published_articles_page_by_page_with_the_admin_token(
        fake: FakeChatwoot, capsys: pytest.CaptureFixture[str]) -> None:
    fake.add_portal("docs")
    for n in range(26):
        fake.add_article("docs", f"Article {n}", f"Text {n}.")
    synced(capsys)
    calls = fake.requests_to("GET", "/api/v1/accounts/1/portals/docs/articles")
    assert [c.status for c in calls] == [200, 200, 200]  # pages 1 and 2, then an empty page 3
    assert all(c.token == fake.admin_token for c in calls)


def test_sync_without_an_admin_token_or_with_a_bot_token_says_what_to_do(
        fake: FakeChatwoot, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CHATWOOT_ADMIN_TOKEN", "")
    assert main(["kb", "sync"]) == 2
    assert "CHATWOOT_ADMIN_TOKEN is not set" in capsys.readouterr().err
    monkeypatch.setenv("CHATWOOT_ADMIN_TOKEN", fake.bot_token)
    assert main(["kb", "sync"]) == 2
    err = capsys.readouterr().err
    assert "not authorized for bots" in err.lower() and fake.bot_token not in err
