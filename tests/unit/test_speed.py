"""Speed presets: the config's keys over the built-in presets, the names' own speeds, and the step caches really
attaching to every family's transformer (a cache that matches no module would change nothing, silently)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dreamreel.engine.catalog import CatalogError, embedded_catalog, parse_catalog
from dreamreel.engine.registry import ModelSpec, load_backend
from dreamreel.engine.speed import DEFAULT_SPEEDS, CacheSpec, SpeedError, SpeedPreset, default_speeds, parse_speeds
from dreamreel.engine.step_cache import CacheNotAttached, hook_count, step_cache, transformers_of
from dreamreel.engine.tiny_ltx2 import build_tiny_ltx2
from dreamreel.engine.tiny_real import build_from_real_config

EMBEDDED = Path(__file__).resolve().parents[2] / "models" / "embedded"


def _catalog(tmp_path: Path, table: str) -> object:
    import tomllib

    return parse_catalog(tomllib.loads(table), tmp_path / "models.toml")


def test_builtin_presets_and_the_names_own_speed(tmp_path: Path) -> None:
    catalog = embedded_catalog(EMBEDDED)
    assert catalog.entry("ray-2").preset(None) == ("quality", DEFAULT_SPEEDS["quality"])
    assert catalog.entry("ray-flash-2").preset(None) == ("fast", DEFAULT_SPEEDS["fast"])
    assert catalog.entry("ray-flash-2").preset("quality")[0] == "quality"  # a request's speed wins
    fast = DEFAULT_SPEEDS["fast"]
    assert fast.steps_for(20) == 16 and fast.steps_for(1) == 1 and fast.cache.enabled and fast.guidance_from == 0.5
    assert not DEFAULT_SPEEDS["quality"].cache.enabled and DEFAULT_SPEEDS["quality"].steps_for(20) == 20

    # A config that leaves ray-flash-2 out: the default model at its fast speed; one that names it: its table.
    config = _catalog(tmp_path, '[models.big]\nfamily = "ltx-condition"\npath = "m"\n')
    assert config.entry("ray-flash-2").preset(None)[0] == "fast" and config.entry("big").preset(None)[0] == "quality"
    named = _catalog(tmp_path, '[models.big]\nfamily = "ltx-condition"\npath = "m"\n'
                               '[models.ray-flash-2]\nfamily = "ltx-condition"\npath = "m"\nspeed = "balanced"\n')
    assert named.entry("ray-flash-2").preset(None)[0] == "balanced"


def test_config_overrides_one_key_and_keeps_the_rest(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, """
[models.ray-2]
family = "ltx-condition"
path = "m"
[models.ray-2.speeds.fast]
steps = 6
cache = { kind = "taylorseer", interval = 3 }
x264_preset = "superfast"
[models.ray-2.speeds.balanced]
cache = "none"
guidance = 2.5
""")
    speeds = catalog.entry("ray-2").speeds
    assert speeds["fast"] == SpeedPreset(steps=6, steps_fraction=DEFAULT_SPEEDS["fast"].steps_fraction,
                                         guidance_from=DEFAULT_SPEEDS["fast"].guidance_from,
                                         cache=CacheSpec(kind="taylorseer", interval=3), x264_preset="superfast")
    assert speeds["fast"].steps_for(50) == 6
    assert speeds["balanced"] == SpeedPreset(guidance=2.5, cache=CacheSpec(kind="none"))
    assert speeds["quality"] == DEFAULT_SPEEDS["quality"]


@pytest.mark.parametrize(("table", "message"), [
    ("[models.ray-2.speeds.turbo]\nsteps = 2", "unknown preset(s) turbo"),
    ("[models.ray-2.speeds.fast]\nstep = 2", "speeds.fast: unknown key(s) step"),
    ("[models.ray-2.speeds.fast]\nsteps = 0", "speeds.fast.steps: 1..1000"),
    ("[models.ray-2.speeds.fast]\nsteps = 2.5", "speeds.fast.steps must be an integer"),
    ("[models.ray-2.speeds.fast]\nsteps_fraction = 1.5", "speeds.fast.steps_fraction: in (0, 1]"),
    ("[models.ray-2.speeds.fast]\ncache = \"magic\"", "cache.kind: one of none, first-block, taylorseer, pab"),
    ("[models.ray-2.speeds.fast]\ncache = { kind = \"first-block\", threshold = 2 }", "cache.threshold"),
    ("[models.ray-2.speeds.fast]\ncache = { kind = \"taylorseer\", every = 2 }", "cache: unknown key(s) every"),
    ("[models.ray-2.speeds.fast]\nx264_preset = \"warp\"", "speeds.fast.x264_preset: one of ultrafast"),
    ("[models.ray-2.speeds.fast]\ncache = { kind = \"magcache\" }", "cache.ratios: a magcache needs the model's"),
    ("[models.ray-2.speeds.fast]\ncache = { kind = \"magcache\", ratios = [1, -1] }", "cache.ratios: each a"),
    ("[models.ray-2.speeds.fast]\ncache = { kind = \"magcache\", ratios = \"1\" }", "ratios must be a list"),
    ("[models.ray-2.speeds.fast]\nguidance_from = 1.0", "speeds.fast.guidance_from: in [0, 1)"),
    ("[models.ray-2.speeds.fast]\nguidance_from = 0.5\ncache = { kind = \"magcache\", ratios = [1] }",
     "guidance_from: a magcache counts its calibrated steps"),
])
def test_bad_preset_settings_name_the_key(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(CatalogError, match="models.toml") as caught:
        _catalog(tmp_path, f'[models.ray-2]\nfamily = "ltx-condition"\npath = "m"\n{table}\n')
    assert message in str(caught.value)


def test_a_magcache_table_carries_its_ratios(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, '[models.ray-2]\nfamily = "ltx-condition"\npath = "m"\n'
                                 '[models.ray-2.speeds.balanced]\n'
                                 'cache = { kind = "magcache", threshold = 0.02, interval = 2, '
                                 'ratios = [1, 0.99, 0.9] }\n')
    cache = catalog.entry("ray-2").speeds["balanced"].cache
    assert cache == CacheSpec(kind="magcache", threshold=0.02, interval=2, ratios=(1.0, 0.99, 0.9))


def test_ltx2_presets_use_taylorseer_and_refuse_first_block(tmp_path: Path) -> None:
    assert default_speeds("ltx2")["fast"].cache.kind == "taylorseer"
    assert default_speeds("ltx2")["fast"].steps_fraction == DEFAULT_SPEEDS["fast"].steps_fraction
    assert default_speeds("ltx2")["quality"] == DEFAULT_SPEEDS["quality"]
    with pytest.raises(CatalogError, match="first-block cache does not support the ltx2 transformer"):
        _catalog(tmp_path, '[models.ray-2]\nfamily = "ltx2"\npath = "m"\n'
                           '[models.ray-2.speeds.balanced]\ncache = "first-block"\n')


def test_a_guidance_window_needs_a_family_that_batches_guidance(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, '[models.ray-2]\nfamily = "ltx2"\npath = "m"\n'
                                 '[models.ray-2.speeds.fast]\nguidance_from = 0.4\n')
    assert catalog.entry("ray-2").speeds["fast"].guidance_from == 0.4
    wan_fast = default_speeds("wan-t2v")["fast"]  # the built-in fast of a family without the window: fewer steps
    assert wan_fast.guidance_from == 0 and wan_fast.steps_for(20) == 12 and wan_fast.cache.kind == "first-block"
    magcache = _catalog(tmp_path, '[models.ray-2]\nfamily = "ltx-condition"\npath = "m"\n[models.ray-2.speeds.fast]\n'
                                  'cache = { kind = "magcache", ratios = [1.0, 0.9] }\n')
    assert magcache.entry("ray-2").speeds["fast"].guidance_from == 0  # a magcache table turns the window off
    with pytest.raises(CatalogError, match="wan-t2v pipeline runs guidance's passes in turn"):
        _catalog(tmp_path, '[models.ray-2]\nfamily = "wan-t2v"\npath = "m"\n'
                           '[models.ray-2.speeds.fast]\nguidance_from = 0.4\n')


def test_speed_key_is_checked(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"models.ray-2.speed: one of quality, balanced, fast"):
        _catalog(tmp_path, '[models.ray-2]\nfamily = "ltx-condition"\npath = "m"\nspeed = "ludicrous"\n')
    with pytest.raises(SpeedError, match="must be a table"):
        parse_speeds({"fast": 3}, "x", "ltx-condition")


@pytest.fixture(scope="module")
def families(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A tiny model of each transformer design: LTX-Video, Wan 2.1, Wan 2.2 A14B (two experts), LTX-2."""
    root = tmp_path_factory.mktemp("speed-families")
    dirs = {name: build_from_real_config(name, root / name, seed=0)
            for name in ("ltx-video-0.9.5-2b", "wan2.1-t2v-1.3b", "wan2.2-t2v-a14b")}
    dirs["ltx2"] = build_tiny_ltx2(root / "ltx2", seed=0)
    return dirs


@pytest.mark.parametrize("kind", ["first-block", "taylorseer", "pab"])
@pytest.mark.parametrize("name", ["ltx-video-0.9.5-2b", "wan2.1-t2v-1.3b", "wan2.2-t2v-a14b", "ltx2"])
def test_caches_attach_to_every_transformer_and_come_off(families: dict, name: str, kind: str) -> None:
    from dreamreel.engine.catalog import checkpoint_family

    path = families[name]
    backend = load_backend(ModelSpec(family=checkpoint_family(path), path=path))
    models = transformers_of(backend.pipe)
    assert len(models) == (2 if name == "wan2.2-t2v-a14b" else 1)
    before = [hook_count(model) for model in models]
    if name == "ltx2" and kind == "first-block":  # diffusers has no first-block entry for its audio-video block
        with pytest.raises(CacheNotAttached, match="LTX2VideoTransformer3DModel"), \
                step_cache(backend.pipe, CacheSpec(kind=kind)):
            pass
        assert [hook_count(model) for model in models] == before
        return
    with step_cache(backend.pipe, CacheSpec(kind=kind)) as added:
        during = [hook_count(model) for model in models]
        assert added > 0 and all(d > b for d, b in zip(during, before, strict=True)), (during, before)
    assert [hook_count(model) for model in models] == before


def test_a_cache_that_matches_nothing_is_an_error() -> None:
    with pytest.raises(CacheNotAttached, match="first-block cache matched no module"), \
            step_cache(SimpleNamespace(), CacheSpec(kind="first-block")):
        pass
    with step_cache(SimpleNamespace(), CacheSpec(kind="none")) as added:  # no cache: nothing to attach
        assert added == 0


@pytest.fixture(scope="module")
def embedded() -> object:
    return load_backend(embedded_catalog(EMBEDDED).entry("ray-2").spec)


def embedded_run(backend: object, steps: int) -> Callable[[], np.ndarray]:
    """One short clip of the embedded model at ``steps`` steps, the same every call (its plan: ``.plan``)."""
    from dreamreel.core.request import GenerationRequest
    from dreamreel.engine.plan import plan_generation

    request = GenerationRequest(prompt="a red ball bouncing on green grass", resolution="540p", duration_s=1)
    plan = plan_generation(request, backend.native_grid(), seed=3, steps=steps, guidance_scale=6.0)

    def run() -> np.ndarray:
        return backend.generate(plan, lambda *_: None, lambda: False)

    run.plan = plan  # type: ignore[attr-defined]
    return run


def test_caches_change_the_embedded_models_work_and_taylorseer_really_predicts(embedded: object) -> None:
    """On the embedded model at 8 steps: TaylorSeer at its block patterns and First Block Cache each change the
    frames (they skipped work), stay close to the full run, and leave the next uncached run exactly as before."""
    from dreamreel.media.quality import psnr

    backend, run = embedded, embedded_run(embedded, 8)
    full = run()
    for spec in (CacheSpec(kind="taylorseer", interval=2, warmup=2), CacheSpec(kind="first-block", threshold=0.2),
                 CacheSpec(kind="pab", interval=2)):
        with step_cache(backend.pipe, spec):
            cached = run()
        assert not np.array_equal(cached, full), spec.kind
        assert np.mean([psnr(a, b) for a, b in zip(cached, full, strict=True)]) > 20, spec.kind
    assert np.array_equal(run(), full)


RATIOS = (1.0, 1.0, 0.99, 0.98, 0.95, 0.9)


@pytest.mark.parametrize("name", ["ltx-video-0.9.5-2b", "wan2.1-t2v-1.3b", "wan2.2-t2v-a14b"])
def test_magcache_attaches_to_one_transformer_and_comes_off(families: dict, name: str) -> None:
    from dreamreel.engine.catalog import checkpoint_family

    path = families[name]
    backend = load_backend(ModelSpec(family=checkpoint_family(path), path=path))
    models = transformers_of(backend.pipe)
    before = [hook_count(model) for model in models]
    spec = CacheSpec(kind="magcache", threshold=0.02, ratios=RATIOS)
    if len(models) > 1:  # one calibration describes one transformer
        with pytest.raises(CacheNotAttached, match="has 2"), step_cache(backend.pipe, spec, steps=6):
            pass
    else:
        with step_cache(backend.pipe, spec, steps=6) as added:
            assert added > 0
    assert [hook_count(model) for model in models] == before


def test_magcache_calibrates_on_the_embedded_model_and_its_ratios_skip_work(embedded: object) -> None:
    """Calibration measures one ratio per step; a magcache with them changes the frames (it skipped blocks),
    stays close to the full run, and leaves the next uncached run exactly as before."""
    from dreamreel.engine.step_cache import calibrate_magcache
    from dreamreel.media.quality import psnr

    backend, run = embedded, embedded_run(embedded, 10)
    full = run()
    ratios = calibrate_magcache(backend.pipe, 10, run)
    assert len(ratios) == 10 and ratios[0] == 1.0 and all(0.5 < ratio < 1.5 for ratio in ratios)
    assert np.array_equal(run(), full)  # calibration hooks came off
    with step_cache(backend.pipe, CacheSpec(kind="magcache", threshold=0.1, interval=3, warmup=2,
                                            ratios=tuple(ratios)), steps=10):
        cached = run()
    assert not np.array_equal(cached, full)
    assert np.mean([psnr(a, b) for a, b in zip(cached, full, strict=True)]) > 20
    assert np.array_equal(run(), full)


def test_a_guidance_window_skips_the_unconditional_pass_and_matches_guidance_switched_on_late(
        embedded: object) -> None:
    """``guidance_from`` 0.5 of 8 steps: the transformer runs one pass on steps 1-4 and both on 5-8 (a step cache
    beside it too), and the clip is the one the slow way gives (both passes on every step, the scale switched
    from ~1 to 6 after step 4); the hooks come off."""
    from dataclasses import replace

    from dreamreel.engine.produce import speed_applied
    from dreamreel.media.quality import psnr

    backend = embedded
    transformer = backend.pipe.transformer
    batches: list[int] = []
    watch = transformer.transformer_blocks[0].register_forward_pre_hook(
        lambda module, args, kwargs: batches.append(kwargs.get("hidden_states", args[0] if args else None).shape[0]),
        with_kwargs=True)
    try:
        run = embedded_run(backend, 8)
        hooks_before = hook_count(transformer)
        for preset in (SpeedPreset(guidance_from=0.5), SpeedPreset(guidance_from=0.5, cache=CacheSpec(
                kind="first-block", threshold=0.05))):
            batches.clear()
            with speed_applied(backend.pipe, preset, 8) as open_guidance:
                assert open_guidance is not None
                windowed = backend.generate(run.plan, open_guidance, lambda: False)
            assert batches[:4] == [1, 1, 1, 1] and set(batches[4:]) == {2}, (preset, batches)
            assert hook_count(transformer) == hooks_before
        plain = SpeedPreset(guidance_from=0.5)
        with speed_applied(backend.pipe, plain, 8) as open_guidance:
            windowed = backend.generate(run.plan, open_guidance, lambda: False)

        def switch_late(step: int, total: int) -> None:
            if step == 4:
                backend.pipe._guidance_scale = run.plan.guidance_scale

        slow = backend.generate(replace(run.plan, guidance_scale=1.0 + 1e-6), switch_late, lambda: False)
        assert np.mean([psnr(a, b) for a, b in zip(windowed, slow, strict=True)]) > 45
        assert not np.array_equal(windowed, run())
    finally:
        watch.remove()
