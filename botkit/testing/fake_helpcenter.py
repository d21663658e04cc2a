"""The fake Chatwoot's Help Center: portals and their articles, answered as Chatwoot's code answers them.

    fake.add_portal("docs", name="Docs")
    article = fake.add_article("docs", "Reset your password", "Open Settings > Security ...")
    fake.update_article(article.id, content="...")          # updated_at moves on, as a save does
    fake.update_article(article.id, status="draft")         # unpublished
    fake.delete_article(article.id)

Modelled on Chatwoot's source: app/models/article.rb (status draft/published/archived, slug from the
title), app/controllers/api/v1/accounts/portals_controller.rb and articles_controller.rb#index (filter by
`status`, newest `updated_at` first, Kaminari pages of 25; an unknown portal slug is a 404 through
`find_by!`), and the jbuilder views (app/views/api/v1/accounts/portals/index.json.jbuilder,
articles/index.json.jbuilder, articles/_article.json.jbuilder: `updated_at` as epoch seconds, `status` as
its name). A bot token gets 401 "not authorized for bots": these endpoints are not on its allow-list.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

ARTICLE_STATUSES = ("draft", "published", "archived")
PAGE_SIZE = 25  # Kaminari's default per page


def parameterize(title: str) -> str:
    """Rails' `title.underscore.parameterize(separator: '-')`, for the ASCII titles tests use."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


@dataclass
class Portal:
    id: int
    account_id: int
    slug: str
    name: str
    custom_domain: str | None = None
    archived: bool = False
    locales: list[str] = field(default_factory=lambda: ["en"])

    def to_json(self, articles: list[Article]) -> dict[str, Any]:
        mine = [a for a in articles if a.portal_id == self.id]
        return {
            "id": self.id, "color": "#1f93ff", "custom_domain": self.custom_domain, "header_text": self.name,
            "homepage_link": None, "name": self.name, "page_title": self.name, "slug": self.slug,
            "archived": self.archived, "account_id": self.account_id,
            "config": {"allowed_locales": [{"code": code, "articles_count": sum(a.locale == code for a in mine),
                                            "categories_count": 0} for code in self.locales],
                       "default_locale": self.locales[0]},
            "meta": {"all_articles_count": len(mine),
                     "archived_articles_count": sum(a.status == "archived" for a in mine),
                     "published_count": sum(a.status == "published" for a in mine),
                     "draft_articles_count": sum(a.status == "draft" for a in mine),
                     "categories_count": 0, "default_locale": self.locales[0]},
        }


@dataclass
class Article:
    id: int
    account_id: int
    portal_id: int
    title: str
    content: str
    slug: str
    status: str = "published"
    locale: str = "en"
    description: str | None = None
    author_id: int = 1
    position: int = 0
    views: int = 0
    updated_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "slug": self.slug, "title": self.title, "content": self.content,
            "description": self.description, "status": self.status, "position": self.position,
            "account_id": self.account_id, "updated_at": int(self.updated_at), "meta": {}, "locale": self.locale,
            "associated_article_id": None,
            "category": {"id": None, "name": None, "slug": None, "locale": None},
            "views": self.views,
            "author": {"id": self.author_id, "name": "Admin", "available_name": "Admin", "thumbnail": ""},
            "associated_articles": [],
        }


class HelpCenterMixin:
    """Mixed into FakeChatwoot: the seeding methods and the two read endpoints a sync calls."""

    portals: dict[str, Portal]
    articles: dict[int, Article]
    account_id: int

    def _init_helpcenter(self) -> None:
        self.portals = {}
        self.articles = {}
        self._clock_tick = itertools.count(1)

    def _now(self) -> float:
        # strictly increasing, so two saves within one second still order as Chatwoot's timestamps would
        return time.time() + next(self._clock_tick) * 1e-3

    def add_portal(self, slug: str, *, name: str | None = None, account_id: int | None = None,
                   custom_domain: str | None = None, archived: bool = False,
                   locales: list[str] | None = None) -> Portal:
        portal = Portal(len(self.portals) + 1, account_id or self.account_id, slug, name or slug.title(),
                        custom_domain, archived, locales or ["en"])
        self.portals[slug] = portal
        return portal

    def add_article(self, portal_slug: str, title: str, content: str, *, status: str = "published",
                    locale: str = "en", description: str | None = None) -> Article:
        assert status in ARTICLE_STATUSES
        portal = self.portals[portal_slug]
        article_id = max(self.articles, default=0) + 1
        article = Article(article_id, portal.account_id, portal.id, title, content,
                          f"{int(time.time())}-{parameterize(title)}", status, locale, description,
                          updated_at=self._now())
        self.articles[article_id] = article
        return article

    def update_article(self, article_id: int, **fields: Any) -> Article:
        article = self.articles[article_id]
        for name, value in fields.items():
            setattr(article, name, value)
        article.updated_at = self._now()
        return article

    def delete_article(self, article_id: int) -> None:
        del self.articles[article_id]

    async def _list_portals(self, request: Request, principal: Any) -> Response:
        account_id = request.path_params["account_id"]
        portals = [p for p in self.portals.values() if p.account_id == account_id]
        articles = list(self.articles.values())
        return JSONResponse({"payload": [p.to_json(articles) for p in portals],
                             "meta": {"current_page": 1, "portals_count": len(portals)}})

    async def _list_articles(self, request: Request, principal: Any) -> Response:
        from botkit.testing.fake_chatwoot import NOT_FOUND, ChatwootReply, _error

        account_id = request.path_params["account_id"]
        portal = self.portals.get(request.path_params["portal_slug"])
        if portal is None or portal.account_id != account_id:
            raise ChatwootReply(_error(404, NOT_FOUND))
        query = request.query_params
        every = [a for a in self.articles.values() if a.portal_id == portal.id]
        chosen = [a for a in every if not query.get("status") or a.status == query["status"]]
        chosen = [a for a in chosen if not query.get("locale") or a.locale == query["locale"]]
        chosen.sort(key=lambda a: -a.updated_at)
        page = max(int(query.get("page") or 1), 1) if (query.get("page") or "1").isdigit() else 1
        shown = chosen[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
        return JSONResponse({
            "payload": [a.to_json() for a in shown],
            "meta": {"current_page": str(page), "articles_count": len(every), "all_articles_count": len(every),
                     "archived_articles_count": sum(a.status == "archived" for a in every),
                     "published_count": sum(a.status == "published" for a in every),
                     "draft_articles_count": sum(a.status == "draft" for a in every),
                     "mine_articles_count": 0},
        })
