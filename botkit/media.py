"""What the contact sends besides words: attachments fetched from Chatwoot within a size cap per kind, images
handed to a vision model (by URL, or inlined as a data URL when the model cannot reach Chatwoot), voice notes
transcribed through an OpenAI-compatible `/audio/transcriptions` endpoint, and documents (PDF, HTML, Markdown,
text) read by the knowledge base's readers (`botkit/knowledge/documents.py`, the `kb` extra).

An attachment arrives as a URL (`data_url`, `app/models/attachment.rb#push_event_data`): an Active Storage
link that redirects to the file, so no Chatwoot token is sent with it (and none must be: the redirect may lead
to another host). `file_size` is known in advance; a download is cut off at the cap anyway. Anything skipped
(too big, unreachable, a transcription that failed) is one log line, and the handlers carry on without it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import tempfile
from pathlib import Path
from typing import Any

import httpx

from botkit.config import ConfigError, Settings
from botkit.events import Attachment

log = logging.getLogger("botkit.media")


class Media:
    """Fetch, inline and transcribe attachments. `Media.from_settings(settings)`; `await media.aclose()`."""

    def __init__(self, *, max_image_bytes: int = 5 * 1024 * 1024, max_audio_bytes: int = 25 * 1024 * 1024,
                 max_document_bytes: int = 10 * 1024 * 1024, transcription_model: str | None = None,
                 transcription_base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 30.0) -> None:
        self.max_bytes = {"image": max_image_bytes, "audio": max_audio_bytes, "file": max_document_bytes}
        self.transcription_model = transcription_model
        self._transcription_base_url = transcription_base_url
        self._api_key = api_key
        self._timeout = timeout
        self._http: httpx.AsyncClient | None = None
        self._openai: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Media:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        if settings.botkit_transcription_model and not key:
            raise ConfigError("BOTKIT_TRANSCRIPTION_MODEL needs OPENAI_API_KEY (any non-empty value for a local "
                              "server that needs no key).")
        return cls(max_image_bytes=settings.botkit_max_image_bytes, max_audio_bytes=settings.botkit_max_audio_bytes,
                   max_document_bytes=settings.botkit_max_document_bytes,
                   transcription_model=settings.botkit_transcription_model,
                   transcription_base_url=settings.botkit_transcription_base_url, api_key=key)

    @property
    def transcribes(self) -> bool:
        return self.transcription_model is not None

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._openai is not None:
            await self._openai.close()

    async def fetch(self, attachment: Attachment) -> bytes | None:
        """The attachment's bytes, or None (logged) when it is over its kind's cap or cannot be fetched."""
        kind = attachment.file_type or "file"
        cap = self.max_bytes.get(kind, 0)
        if not attachment.data_url:
            log.info("skipping an attachment (%s): it has no URL", kind)
            return None
        if (attachment.file_size or 0) > cap:
            log.info("skipping an attachment (%s) of %d bytes: over the cap of %d (%s)",
                     kind, attachment.file_size, cap, _SETTINGS.get(kind))
            return None
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout, follow_redirects=True)
        try:
            async with self._http.stream("GET", attachment.data_url) as response:
                response.raise_for_status()
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > cap:
                        log.info("skipping an attachment (%s): its download passed the cap of %d bytes "
                                 "(%s)", kind, cap, _SETTINGS.get(kind))
                        return None
        except httpx.HTTPError as exc:
            log.warning("skipping an attachment (%s): it could not be fetched (%s)", kind, type(exc).__name__)
            return None
        return bytes(data)

    async def image_url(self, attachment: Attachment, *, inline: bool) -> str | None:
        """What a vision model is given for an image: its URL, or (`inline`) a data URL of its bytes."""
        if not inline:
            if (attachment.file_size or 0) > self.max_bytes["image"]:
                log.info("skipping an attachment (image) of %d bytes: over the cap of %d (BOTKIT_MAX_IMAGE_BYTES)",
                         attachment.file_size, self.max_bytes["image"])
                return None
            return attachment.data_url or None
        data = await self.fetch(attachment)
        if data is None:
            return None
        media_type = _IMAGE_TYPES.get((attachment.extension or "").lower(), "image/jpeg")
        return f"data:{media_type};base64,{base64.b64encode(data).decode()}"

    async def read_document(self, attachment: Attachment) -> tuple[str, str] | None:
        """A document's (title, text), read by the knowledge base's readers; None (logged) when skipped: over
        BOTKIT_MAX_DOCUMENT_BYTES, a kind they do not read, the `kb` extra not installed, or unreadable."""
        try:
            from botkit.knowledge.documents import SUFFIXES, DocumentError, read_file
        except ImportError:
            log.info("skipping an attachment (file): reading documents needs the kb extra (pip install 'botkit[kb]')")
            return None
        name = (attachment.data_url or "").rsplit("/", 1)[-1].split("?")[0] or "document"
        suffix = "." + (attachment.extension or name.rpartition(".")[2]).lower()
        if suffix not in SUFFIXES or SUFFIXES[suffix] == "faq":
            log.info("skipping an attachment (file): %s is not a kind of document botkit reads", suffix)
            return None
        data = await self.fetch(attachment)
        if data is None:
            return None

        def read() -> tuple[str, str]:  # PDF parsing is CPU work: off the event loop
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / f"document{suffix}"
                path.write_bytes(data)
                [document] = read_file(path)
            return (document.title if document.title != "document" else name), document.text

        try:
            return await asyncio.to_thread(read)
        except (DocumentError, ValueError) as exc:
            log.info("skipping an attachment (file): it could not be read (%s)", type(exc).__name__)
            return None

    async def transcribe(self, attachment: Attachment) -> str | None:
        """The words of a voice note, through `/audio/transcriptions`; None (logged) when skipped or failed."""
        if self.transcription_model is None:
            return None
        data = await self.fetch(attachment)
        if data is None:
            return None
        import openai  # the openai extra, checked at start-up

        if self._openai is None:
            self._openai = openai.AsyncOpenAI(api_key=self._api_key, base_url=self._transcription_base_url,
                                              timeout=self._timeout, max_retries=2)
        name = (attachment.data_url or "voice.ogg").rsplit("/", 1)[-1].split("?")[0] or "voice.ogg"
        try:
            result = await self._openai.audio.transcriptions.create(
                model=self.transcription_model, file=(name, data, _audio_type(name)))
        except openai.OpenAIError as exc:
            log.warning("a voice note was not transcribed (%s)", type(exc).__name__)
            return None
        return (getattr(result, "text", None) or "").strip() or None


_SETTINGS = {"image": "BOTKIT_MAX_IMAGE_BYTES", "audio": "BOTKIT_MAX_AUDIO_BYTES", "file": "BOTKIT_MAX_DOCUMENT_BYTES"}
_IMAGE_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif",
                "webp": "image/webp", "bmp": "image/bmp"}


def _audio_type(name: str) -> str:
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return {"ogg": "audio/ogg", "oga": "audio/ogg", "opus": "audio/ogg", "mp3": "audio/mpeg", "m4a": "audio/mp4",
            "wav": "audio/wav", "webm": "audio/webm", "aac": "audio/aac"}.get(extension, "application/octet-stream")
