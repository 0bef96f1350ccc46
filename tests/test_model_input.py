"""The model-input size rule: within the bounds, and a picture the processor hands the model unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

from train.imaging import PixelBounds, TooLarge, fit_to_model, model_input_size
from train.imaging.model_input import qwen_smart_resize
from train.model_io import load_processor


@st.composite
def sizes_and_bounds(draw):
    short = draw(st.integers(1, 600))
    long = draw(st.integers(short, min(short * 200, 6000)))
    width, height = (long, short) if draw(st.booleans()) else (short, long)
    low = draw(st.sampled_from([784, 3136, 6272, 12544]))
    high = draw(st.integers(low * 2, 2_000_000))
    return width, height, PixelBounds(low, high)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(sizes_and_bounds())
def test_the_size_is_within_bounds_in_patches_and_a_fixed_point_of_the_processors_rule(case):
    width, height, bounds = case
    w, h = model_input_size(width, height, bounds)
    assert w % 28 == 0 and h % 28 == 0 and w >= 28 and h >= 28 and max(w, h) <= 200 * min(w, h)
    assert w * h <= bounds.max_pixels or min(w, h) == 28 == max(w, h)
    assert w * h >= bounds.min_pixels or w * h > bounds.max_pixels - 28 * max(w, h)
    # The processor resizes with transformers' own smart_resize: it must leave this size as it is.
    assert smart_resize(h, w, factor=28, min_pixels=bounds.min_pixels, max_pixels=bounds.max_pixels) == (h, w)
    # The aspect ratio is kept to within a patch on each side (tiny or thin pictures are held at one patch).
    if min(w, h) >= 112:
        assert abs(w / h - width / height) <= (width / height) * (28 / min(w, h) + 28 / max(w, h)) + 1e-9


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.integers(1, 5000), st.integers(1, 5000), st.sampled_from([3136, 12544]), st.integers(12544, 3_000_000))
def test_our_copy_of_qwens_rule_is_transformers_rule(width, height, low, high):
    if max(width, height) > 200 * min(width, height):
        return
    assert qwen_smart_resize(height, width, 28, low, high) == smart_resize(height, width, 28, low, high)


@pytest.mark.parametrize(
    ("size", "bounds", "expected"),
    [
        ((1024, 1024), PixelBounds(3136, 401_408), (616, 616)),  # not 634 x 634: the area stays within bounds
        ((1440, 1080), PixelBounds(3136, 401_408), (728, 532)),
        ((2999, 15), PixelBounds(3136, 12_544), (448, 28)),  # one pass of Qwen's rule gives 1568 x 28, over bounds
        ((128, 128), PixelBounds(3136, 401_408), (140, 140)),
        ((5999, 30), PixelBounds(784, 158_399), (5600, 28)),  # 199.97:1 rounds to 201:1, which the processor refuses
    ],
)
def test_the_picture_is_what_the_real_processor_feeds_the_model(tiny_model_dir, size, bounds, expected):
    processor = load_processor(str(tiny_model_dir), max_pixels=bounds.max_pixels, min_pixels=bounds.min_pixels)
    rng = np.random.default_rng(0)
    source = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    picture = fit_to_model(source, bounds)
    assert picture.size == expected
    assert picture.width * picture.height <= bounds.max_pixels
    features = processor.image_processor(images=[picture], return_tensors="pt")
    _, grid_h, grid_w = features["image_grid_thw"][0].tolist()
    assert (grid_w * 14, grid_h * 14) == picture.size
    # The processor's pixels are exactly ours, normalised: patch 0 of its input is our top-left corner.
    mean = np.array(processor.image_processor.image_mean)
    std = np.array(processor.image_processor.image_std)
    ours = (np.asarray(picture, dtype=np.float64)[:14, :14] / 255 - mean) / std
    theirs = features["pixel_values"][0].numpy().reshape(3, 2, 14, 14)[:, 0].transpose(1, 2, 0)
    assert np.allclose(ours, theirs, atol=1e-5)


def test_a_square_pre_resize_follows_med_r1_then_the_patch_grid():
    picture = fit_to_model(Image.new("L", (500, 300), 90), PixelBounds(image_size=384))
    assert picture.size == (392, 392) and picture.mode == "RGB"


def test_pictures_the_model_cannot_take_are_refused_in_our_words():
    with pytest.raises(TooLarge, match=r"4020 x 20 pixels, more than 200:1"):
        fit_to_model(Image.new("RGB", (4020, 20)))
    with pytest.raises(ValueError, match="min_pixels"):
        PixelBounds(20_000, 12_544)
