"""Files the bot sends: `File` (a name, bytes and a media type), and how a reply with files is cut into the
messages each channel can deliver.

Chatwoot takes a message's files as multipart `attachments[]` beside the other fields
(`app/controllers/api/v1/accounts/conversations/messages_controller.rb#create`,
`app/builders/messages/message_builder.rb#process_attachments`) and names each one's kind from its media type
(`app/helpers/file_type_helper.rb`). It accepts what a channel cannot deliver and the message fails later, so
`plan` keeps to each channel's limits:

- at most 15 attachments in one message (`app/models/message.rb`);
- WhatsApp sends only a message's first attachment, and drops the buttons of a menu that has one
  (`app/services/whatsapp/providers/whatsapp_cloud_service.rb#send_message`): one file per message, the text
  as the first one's caption, a menu in a message of its own;
- TikTok refuses text with an attachment, more than one attachment, and anything but a JPG or PNG under 3 MB
  (`app/services/tiktok/send_on_tiktok_service.rb#validate_message_support!`): the text alone, then each image
  alone; other files are left out with a warning.

A file is sent with no content beside it where the text cannot go with it; a rich message (a menu, cards) is
never sent in the same message as files, since its `content_attributes` do not travel in a multipart body.
"""

from __future__ import annotations

import logging
import mimetypes
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("botkit.files")

MAX_ATTACHMENTS = 15  # per message, app/models/message.rb
TIKTOK_TYPES = frozenset({"image/jpeg", "image/png"})
TIKTOK_MAX_BYTES = 3 * 1024 * 1024
ONE_FILE_CHANNELS = frozenset({"Channel::Whatsapp", "Channel::Tiktok"})
NO_CAPTION_CHANNELS = frozenset({"Channel::Tiktok"})

# app/helpers/file_type_helper.rb: what Chatwoot calls an image or a video; any audio/* is audio; the rest file
_IMAGES = frozenset({"image/jpeg", "image/png", "image/gif", "image/bmp", "image/webp"})
_VIDEOS = frozenset({"video/ogg", "video/mp4", "video/webm", "video/quicktime"})


@dataclass(frozen=True)
class File:
    """A file to send: `File("invoice.pdf", data, "application/pdf")` or `File.from_path("invoice.pdf")`."""

    name: str
    data: bytes
    content_type: str = "application/octet-stream"

    @classmethod
    def from_path(cls, path: str | Path, content_type: str | None = None) -> File:
        """Read a file; its media type from `content_type`, else guessed from its name. Raises OSError."""
        path = Path(path)
        guessed = content_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return cls(path.name, path.read_bytes(), guessed)

    @property
    def kind(self) -> str:
        """Chatwoot's file_type for it: image, video, audio or file."""
        if self.content_type in _IMAGES:
            return "image"
        if self.content_type in _VIDEOS:
            return "video"
        return "audio" if "audio/" in self.content_type else "file"

    def __repr__(self) -> str:  # never the bytes
        return f"File({self.name!r}, {len(self.data)} bytes, {self.content_type!r})"


@dataclass(frozen=True)
class Part:
    """One message of a reply: its text (or None) and its files."""

    text: str | None
    files: tuple[File, ...] = ()


def plan(channel: str | None, text: str | None, files: list[File] | tuple[File, ...], *,
         rich: bool = False) -> list[Part]:
    """Cut a reply of `text` (a rich message's payload if `rich`) and `files` into the messages `channel` can
    deliver, in order. The text part of a rich message is returned with no files, for the caller to send as
    JSON; every other part is a multipart message."""
    files = list(files)
    if channel == "Channel::Tiktok":
        files = [f for f in files if _tiktok_can_send(f)]
    if not files:
        return [Part(text)] if text is not None or rich else []
    per_message = 1 if channel in ONE_FILE_CHANNELS else MAX_ATTACHMENTS
    batches = [tuple(files[i:i + per_message]) for i in range(0, len(files), per_message)]
    if rich:  # the menu last, on its own: a WhatsApp menu with a file loses its buttons
        return [*(Part(None, batch) for batch in batches), Part(text)]
    if channel in NO_CAPTION_CHANNELS:
        return ([Part(text)] if text else []) + [Part(None, batch) for batch in batches]
    return [Part(text or None, batches[0]), *(Part(None, batch) for batch in batches[1:])]


def _tiktok_can_send(file: File) -> bool:
    if file.content_type in TIKTOK_TYPES and len(file.data) < TIKTOK_MAX_BYTES:
        return True
    log.warning("not sending a file (%s, %d bytes) on TikTok: it takes only JPG or PNG images under 3 MB",
                file.content_type, len(file.data))
    return False
