"""Team names to Chatwoot team ids, for `ctx.assign_team("billing")` and hand-offs to a team.

Ids come from the bot's `teams=` and from BOTKIT_TEAMS (`billing=3,technical=4`), compared as `fold`ed
names. A dry run (no Chatwoot) prints names and needs no ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from botkit.config import ConfigError
from botkit.errors import ActionRefused
from botkit.text import fold


class Teams:
    def __init__(self, ids: Mapping[str, int] | None = None, *, dry_run: bool = False) -> None:
        self._ids = {fold(name): team_id for name, team_id in (ids or {}).items()}
        self.dry_run = dry_run

    def add_defaults(self, ids: Mapping[str, int]) -> None:
        """Ids (from BOTKIT_TEAMS) for the names the bot's own `teams=` does not give."""
        self._ids = {**{fold(name): team_id for name, team_id in ids.items()}, **self._ids}

    def id_of(self, team: str | int) -> int | str:
        """The team's id (a name in a dry run); ActionRefused when a name has no id."""
        if isinstance(team, int):
            return team
        if team.isdigit():
            return int(team)
        if self.dry_run and fold(team) not in self._ids:
            return team  # a dry run prints the name
        try:
            return self._ids[fold(team)]
        except KeyError:
            raise ActionRefused(f"team {team!r} has no id: add {team}=<team id> to BOTKIT_TEAMS") from None

    def check(self, names: Iterable[str]) -> None:
        """ConfigError naming what to set when a team the bot assigns by name has no id (none in a dry run)."""
        if self.dry_run:
            return
        missing = sorted({n for n in names if not n.isdigit() and fold(n) not in self._ids})
        if missing:
            example = ",".join(f"{n}=<id>" for n in missing)
            raise ConfigError(f"BOTKIT_TEAMS must give the Chatwoot id of every team the bot assigns, e.g. {example}.")
