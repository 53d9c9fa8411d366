"""The procedural world dreamreel's own text-to-video model is trained and judged on.

A small, closed world: one or two flat-coloured objects (ball, square, triangle, star,
diamond, ring; ten named colours) moving in one of thirteen ways over one of seven textured
backgrounds, filmed by one of nine camera moves. It exists so the project can train a small
LTX-Video-style model on clips whose ground truth is known exactly, and measure prompt
adherence without another learned model in the loop:

* :mod:`.vocab` / :mod:`.spec` - the words and the :class:`Scene` a clip is made from,
  :func:`sample_scene` (also reduced worlds and held-out splits, :mod:`.split`);
* :mod:`.draw` - :func:`draw_scene`, fast enough to render training clips on the fly
  (:mod:`.layout` places things, :mod:`.textures`/:mod:`.scenery` paint and film the
  background, :mod:`.geometry` defines the silhouettes);
* :mod:`.captions` - varied truthful captions and the fixed canonical phrasing;
* :mod:`.analyze` - :func:`analyze_clip` reads colour, shape, motion, background and camera
  back from pixels (robust to the blur, noise and colour casts of model outputs) and
  :func:`score` compares that with the scene that was asked for.

Pure numpy + Pillow; no torch, so evaluation and benchmark tools can import it cheaply.
"""

from dreamreel_lab.world.analyze import Analysis, ObjectAnalysis, analyze_clip, score
from dreamreel_lab.world.captions import CAMERA_PHRASES, canonical_caption, caption
from dreamreel_lab.world.draw import draw_scene
from dreamreel_lab.world.spec import (
    REDUCED_WORLD,
    Allowed,
    Background,
    Camera,
    Colour,
    Motion,
    ObjectSpec,
    Scene,
    Shape,
    Split,
    sample_scene,
)

__all__ = [
    "CAMERA_PHRASES",
    "REDUCED_WORLD",
    "Allowed",
    "Analysis",
    "Background",
    "Camera",
    "Colour",
    "Motion",
    "ObjectAnalysis",
    "ObjectSpec",
    "Scene",
    "Shape",
    "Split",
    "analyze_clip",
    "canonical_caption",
    "caption",
    "draw_scene",
    "sample_scene",
    "score",
]
