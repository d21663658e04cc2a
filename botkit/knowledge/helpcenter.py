"""Chatwoot Help Center articles into the knowledge base (`botkit kb sync`).

Chatwoot serves help-center portals with articles (app/models/article.rb: title, content in Markdown,
description, slug, locale, status draft/published/archived, updated_at). With an administrator's token the
bot lists the account's portals (`GET /api/v1/accounts/{id}/portals`) and each portal's published articles,
page by page (`GET .../portals/{slug}/articles?status=published&page=N`, app/controllers/api/v1/accounts/
articles_controller.rb#index). The public page of an article is `/hc/{portal slug}/articles/{article slug}`
on the portal's custom domain, or on Chatwoot's own URL (config/routes.rb).

A sync is incremental: an article whose `updated_at` (and content) did not change is not split or embedded
again; one that is no longer listed as published (unpublished, archived, deleted) leaves the index. Each
article is the document `helpcenter:{portal slug}:{article id}`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from botkit.knowledge.documents import Document
from botkit.knowledge.retrieval import Changes, KnowledgeBase

PREFIX = "helpcenter:"
MAX_PAGES = 1000  # a guard against a server that never answers an empty page


class HelpCenter(Protocol):
    """The two calls a sync needs (ChatwootClient has them)."""

    async def list_portals(self, account_id: int) -> list[dict]: ...
    async def list_articles(self, account_id: int, portal_slug: str, *, page: int = 1,
                            status: str = "published") -> list[dict]: ...


@dataclass
class SyncReport:
    portals: list[str] = field(default_factory=list)
    changes: Changes = field(default_factory=Changes)


def article_link(base_url: str, portal: dict[str, Any], article: dict[str, Any]) -> str:
    domain = (portal.get("custom_domain") or "").strip()
    root = f"https://{domain}" if domain else base_url.rstrip("/")
    return f"{root}/hc/{portal['slug']}/articles/{article['slug']}"


def article_document(base_url: str, portal: dict[str, Any], article: dict[str, Any]) -> Document:
    slug = article.get("slug") or str(article["id"])
    return Document(
        id=f"{PREFIX}{portal['slug']}:{article['id']}",
        title=(article.get("title") or slug).strip(),
        text=article.get("content") or "",
        link=article_link(base_url, portal, {**article, "slug": slug}),
        language=article.get("locale") or (portal.get("config") or {}).get("default_locale"),
        source=f"helpcenter:{portal['slug']}",
        kind="article",
        updated_at=float(article.get("updated_at") or 0),
        description=article.get("description") or None,
    )


async def fetch_articles(client: HelpCenter, account_id: int, portal_slug: str) -> list[dict]:
    """Every published article of a portal, through all pages."""
    articles: list[dict] = []
    seen: set[Any] = set()
    for page in range(1, MAX_PAGES + 1):
        batch = await client.list_articles(account_id, portal_slug, page=page, status="published")
        fresh = [a for a in batch if a.get("id") not in seen]
        if not fresh:
            break
        seen.update(a.get("id") for a in fresh)
        # Chatwoot filters by status already; checked again so a draft never reaches a contact
        articles.extend(a for a in fresh if a.get("status") in ("published", 1))
    return articles


async def sync(kb: KnowledgeBase, client: HelpCenter, *, account_id: int, base_url: str,
               portal: str | None = None) -> SyncReport:
    """Bring the index in line with the published articles of every portal (or of one, by slug).

    Raises LookupError when `portal` names no portal of the account. Embedding runs in a thread."""
    portals = [p for p in await client.list_portals(account_id) if not p.get("archived")]
    if portal is not None:
        portals = [p for p in portals if p.get("slug") == portal]
        if not portals:
            raise LookupError(portal)
    report = SyncReport()
    for each in portals:
        articles = await fetch_articles(client, account_id, each["slug"])
        documents = [article_document(base_url, each, a) for a in articles if (a.get("content") or "").strip()]
        changes = await asyncio.to_thread(kb.replace_source, f"{PREFIX}{each['slug']}:", documents)
        report.portals.append(each["slug"])
        for name in ("added", "updated", "unchanged", "removed"):
            getattr(report.changes, name).extend(getattr(changes, name))
    if portal is None:  # a portal archived or deleted: its articles go too
        listed = tuple(f"{PREFIX}{p['slug']}:" for p in portals)
        for known in await asyncio.to_thread(kb.index.documents):
            if known.id.startswith(PREFIX) and not known.id.startswith(listed):
                await asyncio.to_thread(kb.remove, known.id)
                report.changes.removed.append(known.id)
    return report
