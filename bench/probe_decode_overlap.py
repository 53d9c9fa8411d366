"""Would decoding the VAE in time chunks, and encoding each chunk's frames while the next decodes, shorten a clip?

The embedded model (``LTXConditionPipeline``, ``AutoencoderKLLTXVideo``) makes its clip's latents, captured at the
pipeline's ``vae.decode`` call; from those latents each repeat runs, interleaved:

- ``whole``: the pipeline's own path, one decode of every latent frame, then the encode (``encode_frames`` over
  ``iter_output_frames``: resample, upscale, x264 at ``veryfast``);
- ``chunked``: the latents decoded a few frames at a time with context on both sides (:func:`decode_chunks`),
  then the encode: what chunking costs by itself;
- ``overlapped``: the same chunks decoded in a thread while the encoder consumes each frame as soon as the
  native frames it is blended from exist.

Besides seconds it reports the CPU the stages use (process CPU seconds / wall seconds: 2.0 is both cores busy)
and the PSNR of the chunked frames to the whole decode. Timing: run under ``flock /tmp/bench.lock``.

Usage: .venv/bin/python bench/probe_decode_overlap.py [--repeats 5] [--chunk 4] [--halo 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dreamreel.config import DEFAULT_MODEL_DIR  # noqa: E402
from dreamreel.core.request import GenerationRequest  # noqa: E402
from dreamreel.engine.backends.common import to_uint8  # noqa: E402
from dreamreel.engine.catalog import embedded_catalog  # noqa: E402
from dreamreel.engine.registry import load_backend  # noqa: E402
from dreamreel.engine.render import render  # noqa: E402
from dreamreel.media.encode import encode_frames  # noqa: E402
from dreamreel.media.quality import psnr  # noqa: E402
from dreamreel.media.resample import iter_output_frames, temporal_positions  # noqa: E402

PROMPT = "a red ball bouncing on green grass"
SEED = 1234
SIZES = (("540p", 5), ("1080p", 9))


class Clip:
    """One request's captured decode inputs and output size."""

    def __init__(self, backend, resolution: str, duration: int) -> None:
        vae = backend.pipe.vae
        captured: dict[str, torch.Tensor | None] = {}
        original = vae.decode

        def capture(z, temb=None, return_dict=True):
            captured["z"], captured["temb"] = z.clone(), temb
            return original(z, temb, return_dict=return_dict)

        vae.decode = capture
        try:
            request = GenerationRequest(prompt=PROMPT, resolution=resolution, duration_s=duration, seed=SEED)
            rendered = render(backend, request, seed=SEED, sources=None, on_step=lambda *_: None,
                              should_cancel=lambda: False)
        finally:
            del vae.decode  # back to the class's method
        self.name = f"{resolution} {duration} s"
        self.z, self.temb = captured["z"], captured["temb"]
        self.width, self.height, self.fps, self.total = rendered.width, rendered.height, rendered.fps, rendered.total
        self.native_shape: tuple[int, ...] = ()


def postprocess(backend, video: torch.Tensor) -> np.ndarray:
    return to_uint8(np.asarray(backend.pipe.video_processor.postprocess_video(video, output_type="np")[0]))


def decode_whole(backend, clip: Clip) -> np.ndarray:
    with torch.inference_mode():
        return postprocess(backend, backend.pipe.vae.decode(clip.z, clip.temb).sample)


def decode_chunks(backend, clip: Clip, chunk: int, halo: int) -> Iterator[np.ndarray]:
    """The whole decode's frames, ``chunk`` latent frames at a time, each chunk decoded with ``halo`` more latent
    frames of context a side (one more on the left: the frames between two latent frames need both) and the
    context's frames dropped. The decoder is convolutions and per-position norms only, so with enough context
    a chunk's frames are the whole decode's; diffusers' own temporal tiling (``tile_sample_min_num_frames``,
    cross-faded tiles) is not: 27-30 dB from the whole decode on this VAE (:func:`diffusers_tiling`)."""
    decoder, ratio = backend.pipe.vae.decoder, backend.pipe.vae.temporal_compression_ratio
    frames = clip.z.shape[2]
    with torch.inference_mode():
        for start in range(0, frames, chunk):
            end = min(frames, start + chunk)
            first, last = max(0, start - 1 - halo), min(frames, end + halo)
            decoded = postprocess(backend, decoder(clip.z[:, :, first:last], clip.temb))  # frames 4*first..
            low = 0 if start == 0 else ratio * (start - 1) + 1
            yield decoded[low - ratio * first : ratio * (end - 1) - ratio * first + 1]


def diffusers_tiling(backend, clip: Clip, tile: tuple[int, int]) -> np.ndarray:
    """diffusers' own temporal tiling (``use_framewise_decoding``, ``tile_sample_min/stride_num_frames``)."""
    vae = backend.pipe.vae
    vae.use_framewise_decoding = True
    vae.tile_sample_min_num_frames, vae.tile_sample_stride_num_frames = tile
    try:
        return decode_whole(backend, clip)
    finally:
        vae.use_framewise_decoding = False


def encode(clip: Clip, frames: Iterator[np.ndarray], out: Path) -> None:
    encode_frames(frames, out, width=clip.width, height=clip.height, fps=clip.fps, total=clip.total)


def run_whole(backend, clip: Clip, out: Path) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    native = decode_whole(backend, clip)
    mid_wall, mid_cpu = time.perf_counter(), time.process_time()
    encode(clip, iter_output_frames(native, clip.total), out)
    end_wall, end_cpu = time.perf_counter(), time.process_time()
    return {"s": end_wall - wall, "decode_s": mid_wall - wall, "decode_cores": (mid_cpu - cpu) / (mid_wall - wall),
            "encode_s": end_wall - mid_wall, "encode_cores": (end_cpu - mid_cpu) / (end_wall - mid_wall)}


def run_chunked(backend, clip: Clip, out: Path, chunk: int, halo: int) -> dict[str, float]:
    wall = time.perf_counter()
    native = np.concatenate(list(decode_chunks(backend, clip, chunk, halo)))
    encode(clip, iter_output_frames(native, clip.total), out)
    return {"s": time.perf_counter() - wall}


def run_overlapped(backend, clip: Clip, out: Path, chunk: int, halo: int) -> dict[str, float]:
    wall = time.perf_counter()
    native = np.empty(clip.native_shape, dtype=np.uint8)
    frames = len(native)
    ready = threading.Condition()
    state = {"done": 0, "error": None}

    def produce() -> None:
        try:
            for piece in decode_chunks(backend, clip, chunk, halo):
                with ready:
                    native[state["done"] : state["done"] + len(piece)] = piece
                    state["done"] += len(piece)
                    ready.notify_all()
        except BaseException as exc:  # handed to the consumer
            with ready:
                state["error"] = exc
                ready.notify_all()

    def consume() -> Iterator[np.ndarray]:
        for i0, i1, weight in temporal_positions(frames, clip.total):
            with ready:
                ready.wait_for(lambda i1=i1: state["done"] > i1 or state["error"] is not None)
                if state["error"] is not None:
                    raise state["error"]
            a = native[i0]
            if weight == 0.0:
                yield a
            else:
                b = native[i1].astype(np.float32)
                yield np.clip(np.rint(a + (b - a) * np.float32(weight)), 0, 255).astype(np.uint8)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        encode(clip, consume(), out)
    finally:
        producer.join()
    return {"s": time.perf_counter() - wall}


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}..{max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=4, help="latent frames a chunk")
    parser.add_argument("--halo", type=int, default=2, help="latent frames of context a side")
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    args = parser.parse_args()
    chunk, halo = args.chunk, args.halo
    backend = load_backend(embedded_catalog(args.model_dir).entry("ray-2").spec)
    clips = [Clip(backend, resolution, duration) for resolution, duration in SIZES]
    print(f"torch threads {torch.get_num_threads()}, chunks of {chunk} latent frames, halo {halo}, "
          f"{args.repeats} repeats interleaved\n")
    print("| clip | latents | whole s | chunked s | overlapped s | overlapped / whole | decode s (cores) | "
          "encode s (cores) | chunked PSNR to whole dB (min frame) | diffusers tiling (16, 8) PSNR dB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="dreamreel-overlap-") as tmp:
        out = Path(tmp) / "clip.mp4"
        for clip in clips:
            whole = decode_whole(backend, clip)
            clip.native_shape = whole.shape
            chunked = np.concatenate(list(decode_chunks(backend, clip, chunk, halo)))
            tiled = diffusers_tiling(backend, clip, (16, 8))
            frame_psnr = [psnr(a, b) for a, b in zip(whole, chunked, strict=True)]
            runs: dict[str, list[dict[str, float]]] = {"whole": [], "chunked": [], "overlapped": []}
            for repeat in range(args.repeats):
                order = list(runs) if repeat % 2 == 0 else list(reversed(runs))
                for name in order:
                    if name == "whole":
                        runs[name].append(run_whole(backend, clip, out))
                    elif name == "chunked":
                        runs[name].append(run_chunked(backend, clip, out, chunk, halo))
                    else:
                        runs[name].append(run_overlapped(backend, clip, out, chunk, halo))
            seconds = {name: [r["s"] for r in rs] for name, rs in runs.items()}
            med = {name: statistics.median(v) for name, v in seconds.items()}
            w = runs["whole"]
            print(f"| {clip.name} | {tuple(clip.z.shape[2:])} | {med['whole']:.2f} ({spread(seconds['whole'])}) | "
                  f"{med['chunked']:.2f} ({spread(seconds['chunked'])}) | "
                  f"{med['overlapped']:.2f} ({spread(seconds['overlapped'])}) | "
                  f"{med['overlapped'] / med['whole']:.3f} | "
                  f"{statistics.median(r['decode_s'] for r in w):.2f} "
                  f"({statistics.median(r['decode_cores'] for r in w):.2f}) | "
                  f"{statistics.median(r['encode_s'] for r in w):.2f} "
                  f"({statistics.median(r['encode_cores'] for r in w):.2f}) | "
                  f"{psnr(whole, chunked):.1f} ({min(frame_psnr):.1f}) | {psnr(whole, tiled):.1f} |", flush=True)


if __name__ == "__main__":
    main()
