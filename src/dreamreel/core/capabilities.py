"""What each model family can do; requests asking for more are refused before they are queued.

Refusing at submission (a 4xx) beats accepting a job that can only fail later in a worker. The tables
map backend families to the conditioning controls they implement (:data:`FAMILY_CONTROLS`) and to those
they cannot generate without (:data:`FAMILY_NEEDS`), so a model that cannot honour a request gets a 422
naming the model and the control.

Mapping to real families (see docs/architecture.md; every family has a backend in ``engine/backends``):

* ``ltx-condition`` - diffusers ``LTXConditionPipeline``: images via ``LTXVideoCondition(image=..,
  frame_index=0 | N-1)``, clips via ``LTXVideoCondition(video=.., frame_index=0 | N-k)``. Everything.
* ``wan-t2v`` - diffusers ``WanPipeline``: text only; a loop is a cross-fade of the clip's tail into its head.
* ``wan-i2v`` - diffusers ``WanImageToVideoPipeline(image=start)``: needs a start image; a loop is a
  cross-fade (Wan 2.1 I2V cannot take a last frame to close it on), so the start image is faded into the
  loop rather than kept as its exact first frame.
* ``wan-flf2v`` - the same pipeline with ``last_image=``: a start image and an end image, or a loop (the
  start image is also the last frame). The pipeline cannot generate without a first image, so an end
  image alone is refused; Wan 2.1 FLF2V cannot run on a first image alone either (its transformer embeds
  exactly two images), so a start image needs an end image or a loop.
* ``wan-vace`` - diffusers ``WanVACEPipeline``: a ``video`` and a ``mask`` with one frame each per native
  frame; a condition's pixels sit at its frames (images at 0 | N-1, clips at 0.. | N-k..) under a black
  (keep) mask, every other frame is gray (VACE's empty) under a white (generate) mask. Everything.
* ``wan22-ti2v`` - Wan 2.2 TI2V-5B: ``WanPipeline`` for text, ``WanImageToVideoPipeline(image=start)`` for a
  start image, on the same weights (``expand_timesteps``). That mode ignores ``last_image``, so no end image; a
  loop on a start image fades into it, as ``wan-i2v``'s does.
* ``wan22-t2v`` - Wan 2.2 T2V-A14B (two experts): as ``wan-t2v``.
* ``wan22-i2v`` - Wan 2.2 I2V-A14B (two experts, no CLIP encoder): ``image=`` the start image and ``last_image=``
  an end image or a loop's start image, so it needs a start image and closes a loop on it, like ``wan-flf2v``
  without needing the end.
* ``ltx2`` - diffusers ``LTX2ConditionPipeline`` (LTX-2: video *with sound*): keyframes, extend and loop as for
  ``ltx-condition`` (``LTX2VideoCondition``), modify and reframe as every family edits, and the one family that
  adds sound to a clip (``add_audio``: the source's frames as a condition on every latent frame, held clean,
  while only the audio is denoised). Everything.

Every family but ``ltx2`` makes silent video, so ``add_audio`` is :data:`SOUND`, outside :data:`ALL_CONTROLS`.

The server passes each public name's family, read from the model directory's ``dreamreel.json``, to
:func:`check_supported`; ``DEFAULT_FAMILIES`` only serves callers that pass none.
"""

from __future__ import annotations

from collections.abc import Mapping

from dreamreel.core.concepts import resolve_concepts
from dreamreel.core.conditioning import Control, controls_of
from dreamreel.core.errors import InvalidRequest, NotSupported
from dreamreel.core.request import PUBLIC_MODELS, GenerationRequest

SOUND = frozenset({Control.ADD_AUDIO})
"""Controls only a model that makes sound has (:func:`makes_sound`)."""
ALL_CONTROLS = frozenset(Control) - SOUND
"""Every control on the picture."""
EDITS = frozenset({Control.MODIFY, Control.REFRAME})
"""Every family edits: the engine holds the latents to the source the same way for each (``engine/edit.py``)."""

FAMILY_CONTROLS: dict[str, frozenset[Control]] = {
    "ltx-condition": ALL_CONTROLS,
    "wan-t2v": frozenset({Control.LOOP}) | EDITS,
    "wan-i2v": frozenset({Control.START_IMAGE, Control.LOOP}) | EDITS,
    "wan-flf2v": frozenset({Control.START_IMAGE, Control.END_IMAGE, Control.LOOP}) | EDITS,
    "wan-vace": ALL_CONTROLS,
    "wan22-ti2v": frozenset({Control.START_IMAGE, Control.LOOP}) | EDITS,
    "wan22-t2v": frozenset({Control.LOOP}) | EDITS,
    "wan22-i2v": frozenset({Control.START_IMAGE, Control.END_IMAGE, Control.LOOP}) | EDITS,
    "ltx2": ALL_CONTROLS | SOUND,
}

FAMILY_NEEDS: dict[str, tuple[tuple[Control, ...], ...]] = {
    "wan-i2v": ((Control.START_IMAGE,),),
    "wan-flf2v": ((Control.START_IMAGE,), (Control.END_IMAGE, Control.LOOP)),
    "wan22-i2v": ((Control.START_IMAGE,),),
}
"""Per family, alternatives a request must use one of, for each group (families absent here need nothing):
the image-to-video pipeline cannot generate without a first frame, Wan 2.1 FLF2V not without a last. An edit
needs none of them: its source supplies the frames."""

DEFAULT_FAMILIES: dict[str, str] = dict.fromkeys(PUBLIC_MODELS, "ltx-condition")
"""Without a model directory to read, every public name is served by an LTX-Video condition checkpoint."""


def check_supported(request: GenerationRequest, families: Mapping[str, str] | None = None) -> None:
    """Raise ``InvalidRequest`` for a model this server does not serve (listing those it does), else
    ``NotSupported`` naming the first field it cannot honour for ``request.model``: a control its family
    lacks, else a control the family cannot generate without."""
    served = families or DEFAULT_FAMILIES
    if request.model not in served:
        raise InvalidRequest(f"unknown model {request.model!r}; this server serves: {', '.join(served)}",
                             field="model")
    family = served[request.model]
    supported = FAMILY_CONTROLS.get(family, frozenset())
    controls = controls_of(request)
    for control in controls:
        if control not in supported:
            raise NotSupported(
                f"model {request.model} ({family}) does not support {control.value} ({control.field})",
                field=control.field,
            )
    for needed in () if request.edit is not None else FAMILY_NEEDS.get(family, ()):  # the source gives frames
        if not any(control in controls for control in needed):
            names = " or ".join(f"{control.value} ({control.field})" for control in needed)
            raise NotSupported(f"model {request.model} ({family}) needs {names}", field=needed[0].field)
    resolve_concepts(request.concepts)


def check_loras(request: GenerationRequest, adapters: Mapping[str, frozenset[str]] | None = None) -> None:
    """Raise ``InvalidRequest`` (field ``loras``) for an adapter ``request.model`` does not offer, naming those it
    does (or saying it has none). ``adapters``: public model name -> the adapter names its models config lists
    (``engine/catalog.py``); None or a name missing from it: that model has none. Checked at submission, so a
    misspelt adapter is a 4xx rather than a failed job."""
    offered = (adapters or {}).get(request.model, frozenset())
    for lora in request.loras:
        if lora.name not in offered:
            listing = f"configured: {', '.join(sorted(offered))}" if offered else "it has no LoRA adapters configured"
            raise InvalidRequest(f"loras: model {request.model} has no LoRA adapter {lora.name!r}; {listing}",
                                 field="loras")


def makes_sound(family: str) -> bool:
    """Whether ``family``'s models make sound with their video (and so can add sound to a clip)."""
    return Control.ADD_AUDIO in FAMILY_CONTROLS.get(family, frozenset())


def pins_last_frame(family: str) -> bool:
    """Whether ``family`` can hold the clip's last frame to an image, so a loop on a start image closes on
    the image itself; otherwise the loop is a cross-fade, as one without a start image is."""
    return Control.END_IMAGE in FAMILY_CONTROLS.get(family, ALL_CONTROLS)
