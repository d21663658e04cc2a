"""The error every command raises when it cannot go on."""


class CommandError(Exception):
    """A command cannot go on; the message is one sentence saying why and what to do."""
