"""Administrator and platform endpoints: agent bots, inboxes' bots, Help Center portals and articles, and
platform (system-wide) bots.

Only provisioning (`botkit provision`, `botkit bots ...`) and `botkit kb sync` call these, with an
administrator's user token or a platform app's token; `ChatwootClient` offers them through this mixin, on
its one request path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote


class AdminEndpoints:
    """Endpoints that need an administrator's user token (account) or a platform app's token (platform)."""

    if TYPE_CHECKING:  # ChatwootClient's one request path (botkit/chatwoot/client.py)
        async def _request(self, method: str, template: str, *, idempotent: bool, json: Any = None,
                           **params: Any) -> Any: ...

    # Account management (an administrator's user token) -------------------------------------------------

    async def list_agent_bots(self, account_id: int) -> list[dict]:
        return await self._request(
            "GET", "/api/v1/accounts/{account_id}/agent_bots", idempotent=True, account_id=account_id)

    async def create_agent_bot(
        self,
        account_id: int,
        *,
        name: str,
        outgoing_url: str,
        description: str | None = None,
        bot_type: int | str | None = None,
        avatar_url: str | None = None,
        bot_config: dict[str, Any] | None = None,
    ) -> dict:
        """`avatar_url`: an image Chatwoot fetches in the background (Avatar::AvatarFromUrlJob), shown as the
        bot's `thumbnail` once fetched; `bot_config`: a JSON object kept with the bot
        (app/controllers/api/v1/accounts/agent_bots_controller.rb)."""
        body: dict[str, Any] = {"name": name, "outgoing_url": outgoing_url}
        optional = {"description": description, "bot_type": bot_type, "avatar_url": avatar_url,
                    "bot_config": bot_config}
        body.update({key: value for key, value in optional.items() if value is not None})
        return await self._request(
            "POST", "/api/v1/accounts/{account_id}/agent_bots", idempotent=False, json=body,
            account_id=account_id)

    async def get_agent_bot(self, account_id: int, bot_id: int) -> dict:
        return await self._request(
            "GET", "/api/v1/accounts/{account_id}/agent_bots/{bot_id}", idempotent=True,
            account_id=account_id, bot_id=bot_id)

    async def update_agent_bot(self, account_id: int, bot_id: int, **fields: Any) -> dict:
        return await self._request(
            "PATCH", "/api/v1/accounts/{account_id}/agent_bots/{bot_id}", idempotent=True, json=fields,
            account_id=account_id, bot_id=bot_id)

    async def delete_agent_bot(self, account_id: int, bot_id: int) -> None:
        await self._request(
            "DELETE", "/api/v1/accounts/{account_id}/agent_bots/{bot_id}", idempotent=False,
            account_id=account_id, bot_id=bot_id)

    async def reset_agent_bot_token(self, account_id: int, bot_id: int) -> dict:
        """A new access token for the bot; the old one stops working. Returns the bot with its new token."""
        # Repeating a reset whose answer was lost only resets again, and the answer holds the token in force.
        return await self._request(
            "POST", "/api/v1/accounts/{account_id}/agent_bots/{bot_id}/reset_access_token", idempotent=True,
            account_id=account_id, bot_id=bot_id)

    async def reset_agent_bot_secret(self, account_id: int, bot_id: int) -> dict:
        """A new webhook signing secret (Chatwoot 4.13+). Returns the bot with its new `secret`."""
        return await self._request(
            "POST", "/api/v1/accounts/{account_id}/agent_bots/{bot_id}/reset_secret", idempotent=True,
            account_id=account_id, bot_id=bot_id)

    async def set_inbox_agent_bot(self, account_id: int, inbox_id: int, bot_id: int | None) -> None:
        """Connect the bot to the inbox, or disconnect the inbox's bot with None."""
        await self._request(
            "POST", "/api/v1/accounts/{account_id}/inboxes/{inbox_id}/set_agent_bot", idempotent=True,
            json={"agent_bot": bot_id}, account_id=account_id, inbox_id=inbox_id)

    async def get_inbox_agent_bot(self, account_id: int, inbox_id: int) -> dict | None:
        """The bot connected to the inbox, or None (app/views/api/v1/accounts/inboxes/agent_bot.json.jbuilder
        answers `{"agent_bot": {}}` when there is none)."""
        result = await self._request(
            "GET", "/api/v1/accounts/{account_id}/inboxes/{inbox_id}/agent_bot", idempotent=True,
            account_id=account_id, inbox_id=inbox_id)
        bot = result.get("agent_bot") if isinstance(result, dict) else None
        return bot or None

    async def list_inboxes(self, account_id: int) -> list[dict]:
        result = await self._request(
            "GET", "/api/v1/accounts/{account_id}/inboxes", idempotent=True, account_id=account_id)
        return list(result.get("payload", [])) if isinstance(result, dict) else list(result)

    async def list_teams(self, account_id: int) -> list[dict]:
        result = await self._request(
            "GET", "/api/v1/accounts/{account_id}/teams", idempotent=True, account_id=account_id)
        return list(result.get("payload", [])) if isinstance(result, dict) else list(result)

    # Help Center (an administrator's or agent's user token) ---------------------------------------------

    async def list_portals(self, account_id: int) -> list[dict]:
        """The account's Help Center portals: `{id, slug, name, custom_domain, archived, config, ...}`
        (app/views/api/v1/accounts/portals/index.json.jbuilder answers `{"payload": [...]}`)."""
        result = await self._request(
            "GET", "/api/v1/accounts/{account_id}/portals", idempotent=True, account_id=account_id)
        return list(result.get("payload", [])) if isinstance(result, dict) else list(result)

    async def list_articles(self, account_id: int, portal_slug: str, *, page: int = 1,
                            status: str = "published") -> list[dict]:
        """One page of a portal's articles with this status, most recently updated first: `{id, slug, title,
        content (Markdown), description, status, locale, updated_at (epoch seconds), category, ...}`
        (app/controllers/api/v1/accounts/articles_controller.rb#index, app/views/api/v1/accounts/articles/
        _article.json.jbuilder). An empty page is past the last one."""
        result = await self._request(
            "GET", "/api/v1/accounts/{account_id}/portals/{portal}/articles?status={status}&page={page}",
            idempotent=True, account_id=account_id, portal=quote(portal_slug, safe=""), status=quote(status),
            page=int(page))
        return list(result.get("payload", [])) if isinstance(result, dict) else list(result)

    # Platform API (a platform app's token): system-wide bots ------------------------------------------

    async def list_platform_bots(self) -> list[dict]:
        return await self._request("GET", "/platform/api/v1/agent_bots", idempotent=True)

    async def create_platform_bot(
        self,
        *,
        name: str,
        outgoing_url: str,
        description: str | None = None,
        account_id: int | None = None,
        avatar_url: str | None = None,
    ) -> dict:
        """A system bot (no `account_id`: every account may connect it to its inboxes). The Platform API
        answers `{id, name, description, outgoing_url, account_id}`: never the bot's access token, and it
        takes no `bot_config` (app/controllers/platform/api/v1/agent_bots_controller.rb)."""
        body: dict[str, Any] = {"name": name, "outgoing_url": outgoing_url}
        optional = {"description": description, "account_id": account_id, "avatar_url": avatar_url}
        body.update({key: value for key, value in optional.items() if value is not None})
        return await self._request("POST", "/platform/api/v1/agent_bots", idempotent=False, json=body)

    async def get_platform_bot(self, bot_id: int) -> dict:
        return await self._request("GET", "/platform/api/v1/agent_bots/{bot_id}", idempotent=True, bot_id=bot_id)

    async def update_platform_bot(self, bot_id: int, **fields: Any) -> dict:
        return await self._request(
            "PATCH", "/platform/api/v1/agent_bots/{bot_id}", idempotent=True, json=fields, bot_id=bot_id)

    async def delete_platform_bot(self, bot_id: int) -> None:
        await self._request("DELETE", "/platform/api/v1/agent_bots/{bot_id}", idempotent=False, bot_id=bot_id)
