"""Which conditioning controls a request uses, and the cheap checks made before it is queued.

Keyframes (Luma semantics): ``frame0``/``frame1`` are each an image or an earlier generation. An image
at ``frame0`` starts the clip on it, at ``frame1`` ends it on it (both: interpolation). A generation at
``frame0`` *extends* that clip (the new clip continues from its last frames); at ``frame1`` it
*reverse-extends* it (the new clip leads into its first frames). ``loop`` makes the last frame flow back
into the first.

Everything here is cheap and runs at submission, so a client gets a 4xx instead of a job that can only
fail: URL schemes, ``data:`` URI headers, literal private addresses, that referenced generations exist,
belong to the caller and are ``completed``, that uploads exist, and the chain-length limit. Fetching and
decoding images happens later, in the worker, off the request path.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from urllib.parse import urlsplit

from dreamreel.core.addresses import address_refusal, is_local_name
from dreamreel.core.edits import GENERATION_SCHEME
from dreamreel.core.errors import Conflict, InvalidRequest, NotFound
from dreamreel.core.generation import Generation, State
from dreamreel.core.request import GenerationKeyframe, GenerationRequest, ImageKeyframe

UPLOAD_SCHEME = "upload:"
"""``upload:<id>``: an image posted to ``POST /uploads`` by the same caller (see docs/architecture.md)."""

MAX_CHAIN_S = 30
"""Longest delivered clip. Extensions contain their source clip(s) (as Luma's do), so a chain of
extensions grows; past this the result would be slow to decode/encode and is refused."""

IMAGE_DATA_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/jpg", "image/pjpeg", "image/webp", "image/gif", "image/bmp", "image/x-ms-bmp"}
)


class Control(StrEnum):
    """One conditioning control; a model family supports a subset (``core.capabilities``)."""

    START_IMAGE = "start_image"
    END_IMAGE = "end_image"
    EXTEND = "extend"
    REVERSE_EXTEND = "reverse_extend"
    LOOP = "loop"
    MODIFY = "modify"
    REFRAME = "reframe"
    ADD_AUDIO = "add_audio"
    """Sound for an existing clip's frames (Luma's ``POST /generations/{id}/audio``)."""

    @property
    def field(self) -> str:
        return {
            Control.MODIFY: "media",
            Control.REFRAME: "media",
            Control.ADD_AUDIO: "generation_type",
            Control.START_IMAGE: "keyframes.frame0",
            Control.END_IMAGE: "keyframes.frame1",
            Control.EXTEND: "keyframes.frame0",
            Control.REVERSE_EXTEND: "keyframes.frame1",
            Control.LOOP: "loop",
        }[self]


def controls_of(request: GenerationRequest) -> list[Control]:
    """The controls ``request`` asks for, in a stable order."""
    controls: list[Control] = []
    if request.edit is not None:
        controls.append({"modify": Control.MODIFY, "reframe": Control.REFRAME,
                         "add_audio": Control.ADD_AUDIO}[request.edit.type])
    frames = request.keyframes
    if frames is not None:
        if isinstance(frames.frame0, ImageKeyframe):
            controls.append(Control.START_IMAGE)
        elif isinstance(frames.frame0, GenerationKeyframe):
            controls.append(Control.EXTEND)
        if isinstance(frames.frame1, ImageKeyframe):
            controls.append(Control.END_IMAGE)
        elif isinstance(frames.frame1, GenerationKeyframe):
            controls.append(Control.REVERSE_EXTEND)
    if request.loop:
        controls.append(Control.LOOP)
    return controls


def generation_ref(keyframe_id: str) -> str:
    """The generation id inside a reference: AI/ML hands out ``<uuid>:luma/ray-2``, the rest bare uuids."""
    return keyframe_id.split(":", 1)[0]


def check_combination(request: GenerationRequest) -> None:
    """Refuse combinations that have no meaning (422)."""
    if not request.loop or request.keyframes is None:
        return
    if request.keyframes.frame1 is not None:
        raise InvalidRequest("loop cannot be combined with keyframes.frame1: a loop ends where it starts",
                             field="loop")
    if isinstance(request.keyframes.frame0, GenerationKeyframe):
        raise InvalidRequest("loop cannot be combined with extending a generation (keyframes.frame0)",
                             field="loop")


def _check_literal_host(url: str, field: str, allow_private: bool) -> None:
    """Refuse a URL whose host is ``localhost`` or a literal IP the address policy refuses, without resolving
    anything. Hostnames are resolved and checked by the worker's fetch (once, pinned, same policy); this
    only catches the obvious cases early so the client gets a 4xx."""
    host = (urlsplit(url).hostname or "").strip("[]")
    if not host:
        raise InvalidRequest(f"{field}: URL has no host", field=field)
    if is_local_name(host):
        if allow_private:
            return
        raise InvalidRequest(f"{field}: URL points at a private or loopback address", field=field)
    try:
        refusal = address_refusal(host, allow_private=allow_private)
    except ValueError:  # a hostname, not a literal address
        return
    if refusal == "a cloud metadata address":
        raise InvalidRequest(f"{field}: URL points at a cloud metadata address ({host})", field=field)
    if refusal is not None:
        raise InvalidRequest(f"{field}: URL points at a private or loopback address ({host})", field=field)


def check_video_source(url: str, field: str, *, allow_private: bool) -> None:
    """Shape checks on an edit's source video: http(s), ``upload:<id>`` or ``generation:<id>``."""
    lowered = url[:16].lower()
    if lowered.startswith((UPLOAD_SCHEME, GENERATION_SCHEME)):
        if not url.split(":", 1)[1].strip():
            raise InvalidRequest(f"{field}: {url.split(':', 1)[0]}: reference has no id", field=field)
        return
    if lowered.startswith(("http://", "https://")):
        _check_literal_host(url, field, allow_private)
        return
    scheme = url.split(":", 1)[0][:20] if ":" in url else "none"
    raise InvalidRequest(f"{field}: the source video must be an http(s) URL, upload: or generation:, got scheme "
                         f"{scheme!r}", field=field)


def check_image_source(url: str, field: str, *, allow_private: bool) -> None:
    """Shape checks on an image keyframe's ``url``: http(s), ``data:image/...``, or ``upload:<id>``."""
    lowered = url[:16].lower()
    if lowered.startswith("data:"):
        header, comma, payload = url[5:].partition(",")
        mime = header.split(";")[0].strip().lower()
        if not comma or not payload:
            raise InvalidRequest(f"{field}: malformed data: URI (no ',' and data)", field=field)
        if mime not in IMAGE_DATA_TYPES:
            raise InvalidRequest(f"{field}: data: URI must carry png/jpeg/webp/gif/bmp, got {mime or 'none'!r}",
                                 field=field)
        return
    if lowered.startswith(UPLOAD_SCHEME):
        return
    if lowered.startswith(("http://", "https://")):
        _check_literal_host(url, field, allow_private)
        return
    scheme = url.split(":", 1)[0][:20] if ":" in url else "none"
    raise InvalidRequest(f"{field}: image url must be http(s), data: or upload:, got scheme {scheme!r}",
                         field=field)


def check_inputs(
    request: GenerationRequest,
    *,
    owner: str,
    get_generation: Callable[[str], Generation | None],
    upload_exists: Callable[[str, str], bool],
    allow_private: bool,
) -> None:
    """Validate every keyframe of ``request`` for ``owner``; raise a 4xx ``DreamreelError`` on the first problem.

    Someone else's generation is reported exactly like a missing one (404), so ids cannot be probed.
    """
    check_combination(request)
    if request.keyframes is None:
        return
    total_s = float(request.duration_s)
    for slot in ("frame0", "frame1"):
        keyframe = getattr(request.keyframes, slot)
        field = f"keyframes.{slot}"
        if isinstance(keyframe, ImageKeyframe):
            check_image_source(keyframe.url, field, allow_private=allow_private)
            if keyframe.url[:7].lower() == UPLOAD_SCHEME and not upload_exists(owner, keyframe.url[7:]):
                raise NotFound(f"{field}: upload {keyframe.url[7:][:80]!r} not found", field=field)
        elif isinstance(keyframe, GenerationKeyframe):
            gid = generation_ref(keyframe.id)
            source = get_generation(gid)
            if source is None or source.owner != owner:
                raise NotFound(f"{field}: generation {gid} not found", field=field)
            if source.state != State.COMPLETED or source.video_info is None or not source.assets.video:
                raise Conflict(f"{field}: generation {gid} is {source.state.value}; only completed generations "
                               "can be extended", field=field)
            total_s += source.video_info.duration_s
    if total_s > MAX_CHAIN_S + 1e-6:
        raise InvalidRequest(f"keyframes: the result would be {total_s:g} s long (sources are included); "
                             f"the limit is {MAX_CHAIN_S} s", field="keyframes")
