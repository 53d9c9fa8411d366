"""What every dialect does the same way for a video edit (modify, reframe) before the service sees it.

* **This server's own file URLs become references.** A client that made a clip here holds its signed file URL
  (``<public_url>/files/generations/<id>/video.mp4?exp=&sig=``) and naturally hands that back as the source of
  an edit. Fetching it over HTTP would be a loop back into this server (refused as a loopback address on most
  deployments, and a copy of bytes the server already has), so it becomes ``generation:<id>`` and an upload's
  URL ``upload:<id>``; the service then checks that the generation is the caller's and completed (404, 409),
  the same check a bare ``generation:<id>`` gets. The signature is not what grants access here (ownership is),
  so an expired URL of one's own clip still works. Another path under ``/files/`` (a poster, a preview) is
  not a video and is refused now. Every other URL passes through unchanged.
* **Field names in the caller's words.** The service names an edit's fields as Luma does (``media.url``,
  ``first_frame.url``); :func:`rename_fields` rewrites an error's field and message into a dialect's own names
  (fal's ``video_url``, OpenAI's ``video``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from dreamreel.api.urls import FILES_PREFIX, FileUrls
from dreamreel.core.conditioning import UPLOAD_SCHEME
from dreamreel.core.edits import GENERATION_SCHEME
from dreamreel.core.errors import DreamreelError, InvalidRequest
from dreamreel.core.request import GenerationRequest

SOURCE_FIELD = "media.url"
"""What the service calls an edit's source in its errors (``core.edits.edit_field``)."""

_GENERATION_VIDEO = re.compile(r"^generations/([A-Za-z0-9_-]{1,200})/video\.mp4$")
_UPLOAD = re.compile(r"^uploads/[A-Za-z0-9_-]{1,64}/([a-f0-9]{32})$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None, str] | None:
    """``(scheme, host, port, path)`` with the default port filled in; None for a URL that does not parse."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number, a bracketed host that is not an address
        return None
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme), parts.path


def own_reference(url: str, urls: FileUrls, field: str = SOURCE_FIELD) -> str:
    """``url`` as a reference when it is one of this server's file URLs of a video (``generation:<id>``,
    ``upload:<id>``); any other URL unchanged. Raises ``InvalidRequest`` for one of this server's file URLs
    that is not a video (a poster, a progress preview)."""
    given, public = _origin(url), _origin(urls.public_url)
    if given is None or public is None or given[:3] != public[:3]:
        return url
    prefix = public[3].rstrip("/") + FILES_PREFIX
    if not given[3].startswith(prefix):
        return url
    key = unquote(given[3][len(prefix):])
    if match := _GENERATION_VIDEO.match(key):
        return GENERATION_SCHEME + match.group(1)
    if match := _UPLOAD.match(key):
        return UPLOAD_SCHEME + match.group(1)
    raise InvalidRequest(f"{field}: {key[:200]!r} is a file of this server but not a generation's video; pass "
                         "the video's URL (assets.video) or generation:<id>", field=field)


def with_own_references(request: GenerationRequest, urls: FileUrls) -> GenerationRequest:
    """``request`` with its edit's source turned into a reference where it is this server's own file URL."""
    edit = request.edit
    if edit is None:
        return request
    source = own_reference(edit.source, urls)
    if source == edit.source:
        return request
    return request.model_copy(update={"edit": edit.model_copy(update={"source": source})})


def rename_in_text(text: str, names: Mapping[str, str]) -> str:
    """``text`` with the core's field names replaced by a dialect's (``names`` as in :func:`rename_fields`): for
    messages the dialect shows as they are, such as a failed edit's reason (``media.url: could not load ...``)."""
    if not names:
        return text
    ordered = sorted(names, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w.])(" + "|".join(re.escape(name) for name in ordered) + r")(?![\w])")
    return pattern.sub(lambda match: names[match.group(1)], text)


def rename_fields(exc: DreamreelError, names: Mapping[str, str]) -> DreamreelError:
    """``exc`` (changed in place) with the core's field names replaced by a dialect's: ``names`` maps e.g.
    ``{"media.url": "video_url", "media": "video_url"}``. Longer names are replaced first and only whole
    names, so ``media.url`` does not become ``video_url.url``."""
    if not names:
        return exc
    exc.message = rename_in_text(exc.message, names)
    exc.args = (exc.message,)
    if exc.field is not None:
        exc.field = names.get(exc.field, exc.field)
    if exc.details is not None:
        exc.details = [{**detail, "msg": rename_in_text(str(detail.get("msg", "")), names),
                        "loc": [names.get(str(part), part) for part in detail.get("loc", [])]}
                       for detail in exc.details]
    return exc
