"""Out-of-memory recovery by fault injection: split the batch, then shrink the tile, never start over."""

import math

import pytest
import torch

import swin2sr
from tests.tiling_models import MODEST_GAIN, FaultyModel, tiny_model

X = torch.rand(1, 3, 128, 256, generator=torch.Generator().manual_seed(0))
PLAN = dict(tile=128, overlap=16, max_input_size=0)  # 3 tiles of 128; the shrunk tile (64, overlap 16) is the seam target
# Batched and single-tile forwards differ by float rounding on the CPU (~1e-5), so "identical" allows that.
ROUNDING = dict(atol=1e-4, rtol=0)


@pytest.fixture(scope="module")
def model():
    return tiny_model("tiny_x4", gain=MODEST_GAIN)  # the seam tests' stand-in for a trained model


@pytest.fixture(scope="module")
def clean(model):
    return swin2sr.upscale(model, X, **PLAN, return_report=True)


def psnr(a, b):
    return 10 * math.log10(1 / ((a - b) ** 2).mean().item())


def assert_nothing_recomputed(faulty, finished_before_failure=None):
    """No tile goes through the model twice (or: none of those finished before the failure)."""
    keys = [t.numpy().tobytes() for t in faulty.done]
    if finished_before_failure is None:
        assert len(set(keys)) == len(keys), "a tile went through the model twice"
    else:
        early = keys[:finished_before_failure]
        assert not set(early) & set(keys[finished_before_failure:]), "a finished tile was recomputed"


def test_planned_batches_hold_several_tiles(clean):
    out, report = clean
    assert report.plan.tiles_per_image == 3 and report.plan.tiles_per_batch == 3 and report.forwards == 1


def test_split_batch_gives_the_identical_result(model, clean):
    faulty = FaultyModel(model, max_batch=2)  # every batch larger than 2 tiles "runs out of memory"
    out, report = swin2sr.upscale(faulty, X, **PLAN, return_report=True)
    assert report.batch_splits == 1 and report.tile_shrinks == 0 and report.tiles_per_batch == 2
    torch.testing.assert_close(out, clean[0], **ROUNDING)
    assert_nothing_recomputed(faulty)
    assert len(faulty.done) == 3


def test_oom_mid_run_keeps_finished_tiles_and_carries_on(model, clean):
    faulty = FaultyModel(model, fail_calls={1, 2})  # the batch of 3 fails, then the batch of 2
    progress = []
    out, report = swin2sr.upscale(faulty, X, **PLAN, progress=lambda d, t: progress.append((d, t)), return_report=True)
    assert report.batch_splits == 2 and report.tiles_per_batch == 1
    torch.testing.assert_close(out, clean[0], **ROUNDING)
    assert_nothing_recomputed(faulty)
    assert progress[-1] == (3, 3) and [d for d, _ in progress] == sorted(d for d, _ in progress)


def test_shrunk_tile_stays_within_tiling_tolerance_and_later_tiles_use_it(model, clean):
    # calls 1, 2: batches of 3 and 2 tiles fail; call 3: first tile done; call 4: the second tile fails
    faulty = FaultyModel(model, fail_calls={4}, max_batch=1)
    out, report = swin2sr.upscale(faulty, X, **PLAN, return_report=True)
    assert report.tile_shrinks == 1 and report.tile == 64
    assert psnr(out, clean[0]) >= 45
    assert_nothing_recomputed(faulty, finished_before_failure=1)
    first_tile = faulty.done[0]
    assert max(first_tile.shape[-2:]) == 128, "the tile finished before the failure was kept"
    assert all(max(t.shape[-2:]) <= 64 for t in faulty.done[1:]), "later tiles did not use the size that worked"


def test_below_the_smallest_tile_the_error_is_clear(model):
    faulty = FaultyModel(model, max_side=16)
    with pytest.raises(MemoryError, match="smallest tile"):
        swin2sr.upscale(faulty, X, **PLAN)


def test_other_errors_propagate_untouched(model):
    class Broken(FaultyModel):
        def forward(self, x):
            raise ValueError("not an OOM")

    with pytest.raises(ValueError, match="not an OOM"):
        swin2sr.upscale(Broken(model), X, **PLAN)


def test_host_is_oom_recognises_its_own_errors(model, clean):
    class HostOOM(Exception):
        pass

    class HostFaulty(FaultyModel):
        def forward(self, x):
            if x.shape[0] > 1:
                raise HostOOM("allocation failed on the host's device")
            return super().forward(x)

    out = swin2sr.upscale(HostFaulty(model), X, **PLAN, is_oom=lambda e: isinstance(e, HostOOM))
    torch.testing.assert_close(out, clean[0], **ROUNDING)
