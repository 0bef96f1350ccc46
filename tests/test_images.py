"""Standard images (train.imaging.standard and ImageStudy): every mode, every format, every refusal."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from train.imaging import (
    CorruptFile,
    ImageNotFound,
    ImagingError,
    InvalidWindow,
    NotAnImage,
    PixelBounds,
    TooLarge,
    model_picture,
    open_study,
    to_png_bytes,
)
from train.imaging.standard import MAX_IMAGE_PIXELS, decode_image, to_rgb


def open_image(source) -> Image.Image:
    """The default 8-bit RGB rendering of a standard image (what training sees without a window)."""
    return open_study(source).render()


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def ramp16() -> np.ndarray:
    return (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)


def png_with_size(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (the IDAT is tiny: only the header matters)."""
    data = encode(Image.new("L", (1, 1)), "PNG")
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return data[:12] + chunk + struct.pack(">I", zlib.crc32(chunk)) + data[33:]


# -- modes and formats ------------------------------------------------------------------------------


def test_8bit_grey_png_keeps_values():
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    rgb = np.asarray(open_image(encode(Image.fromarray(grey), "PNG")))
    assert rgb.shape == (16, 16, 3)
    assert (rgb[..., 0] == grey).all() and (rgb[..., 2] == grey).all()


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16bit_grey_is_stretched_to_full_range(fmt):
    data = encode(Image.fromarray(ramp16()), fmt)
    assert decode_image(data).image.mode.startswith("I;16")
    rgb = np.asarray(open_image(data))
    assert rgb.min() == 0 and rgb.max() == 255
    assert (np.diff(rgb[..., 0].ravel().astype(int)) >= 0).all()  # monotonic ramp stays monotonic


def test_16bit_big_endian_tiff():
    big = Image.frombytes("I;16B", (64, 48), ramp16().astype(">u2").tobytes())
    data = encode(big, "TIFF")
    assert decode_image(data).image.mode in ("I;16B", "I;16")
    rgb = np.asarray(open_image(data))
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255


def test_float_tiff_with_nan_is_black_where_nan():
    values = np.array([[0.0, np.nan], [1.0, 2.0]], dtype=np.float32)
    rgb = np.asarray(open_image(encode(Image.fromarray(values), "TIFF")))
    assert rgb[0, 1, 0] == 0 and rgb[0, 0, 0] == 0 and rgb[1, 1, 0] == 255


def test_palette_and_transparent_palette():
    palette = Image.new("P", (4, 4))
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.putpixel((1, 1), 1)
    rgb = open_image(encode(palette, "PNG"))
    assert rgb.getpixel((1, 1)) == (255, 0, 0) and rgb.getpixel((0, 0)) == (0, 0, 0)
    palette.info["transparency"] = 1
    rgb = open_image(encode(palette, "PNG", transparency=1))
    assert rgb.getpixel((1, 1)) == (0, 0, 0)  # transparent -> black background


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_composited_on_black(mode):
    image = Image.new(mode, (2, 1))
    image.putpixel((0, 0), (200, 0, 0, 255) if mode == "RGBA" else (200, 255))
    image.putpixel((1, 0), (200, 0, 0, 0) if mode == "RGBA" else (200, 0))
    rgb = open_image(encode(image, "PNG"))
    assert rgb.getpixel((0, 0))[0] == 200 and rgb.getpixel((1, 0)) == (0, 0, 0)


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_cmyk(fmt):
    cmyk = Image.new("CMYK", (8, 8), (255, 0, 0, 0))  # pure cyan ink
    r, g, b = open_image(encode(cmyk, fmt)).getpixel((4, 4))
    assert r < 40 and g > 200 and b > 200


def test_cielab_tiff_goes_through_colour_management():
    lab = Image.new("LAB", (4, 4), (128, 128, 128))  # L=50 %, neutral a/b: mid grey
    r, g, b = open_image(encode(lab, "TIFF")).getpixel((0, 0))
    assert abs(r - 119) <= 3 and r == g == b


@pytest.mark.parametrize(
    ("mode", "fmt"), [("RGB", "BMP"), ("1", "BMP"), ("RGB", "WEBP"), ("L", "WEBP"), ("P", "GIF"), ("RGB", "TIFF")]
)
def test_other_formats(mode, fmt):
    source = Image.fromarray((np.arange(24 * 16 * 3) % 251).astype(np.uint8).reshape(16, 24, 3)).convert(mode)
    params = {"lossless": True} if fmt == "WEBP" else {}
    rgb = open_image(encode(source, fmt, **params))
    assert rgb.mode == "RGB" and rgb.size == (24, 16)
    if fmt in ("BMP", "TIFF", "WEBP") and mode == "RGB":
        assert np.array_equal(np.asarray(rgb), np.asarray(source))


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 8, 8))  # red marker top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    upright = open_image(encode(image, "JPEG", exif=exif, quality=95))
    assert upright.size == (20, 40)
    r, _, b = upright.getpixel((16, 3))  # the marker is now top-right
    assert r > 200 and b < 60


def test_multi_page_tiff_and_animated_gif_frames():
    pages = [Image.new("L", (8, 8), value) for value in (10, 120, 250)]
    tiff = encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    decoded = decode_image(tiff, frame=2)
    assert decoded.frames == 3 and decoded.image.getpixel((0, 0)) == 250
    study = open_study(tiff, name="pages.tif")
    assert study.num_frames == 3 and study.render(1).getpixel((0, 0)) == (120, 120, 120)
    gif = encode(pages[0].convert("P"), "GIF", save_all=True, append_images=[p.convert("P") for p in pages[1:]])
    assert open_study(gif).num_frames == 3


# -- refusals ------------------------------------------------------------------------------------------


def test_decompression_bomb_is_refused_before_decoding_with_the_size_and_one_limit():
    with pytest.raises(TooLarge, match="megapixels") as refused:
        open_image(png_with_size(100_000, 100_000))
    # Our words, the picture's own size and the one limit that applies; not Pillow's message.
    message = str(refused.value)
    assert "100000 x 100000 pixels" in message and "the limit is 89 megapixels" in message
    assert "179" not in message and "DOS" not in message and "bomb" not in message
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns between its two thresholds; we refuse anyway
        with pytest.raises(TooLarge, match="Downscale"):
            open_image(png_with_size(10_000, MAX_IMAGE_PIXELS // 10_000 + 1))


def test_too_thin_for_the_model():
    with pytest.raises(TooLarge, match=r"600 x 2 pixels.*200:1"):
        model_picture(encode(Image.new("L", (600, 2)), "PNG"))


def test_truncated_png_is_corrupt_with_a_clear_message():
    data = encode(Image.fromarray(ramp16()), "PNG")
    with pytest.raises(CorruptFile, match=r"damaged or truncated.*PNG"):
        open_image(data[: len(data) // 2])


@pytest.mark.parametrize(
    "data",
    [b"hello world, not an image at all", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", b"8BPS" + bytes(40)],
    ids=["text", "eps", "psd"],
)
def test_unsupported_bytes_are_not_an_image(data):
    # EPS would reach Ghostscript and PSD a rarely-hardened parser: the allow-list refuses both.
    with pytest.raises(NotAnImage, match="PNG, JPEG, TIFF"):
        open_image(data)


def test_empty_missing_and_dicom_sources(tmp_path):
    with pytest.raises(NotAnImage, match="empty"):
        open_image(b"")
    with pytest.raises(ImageNotFound, match=r"missing\.png"):
        open_image(tmp_path / "missing.png")
    (tmp_path / "scan").write_bytes(bytes(128) + b"DICM" + bytes(64))
    with pytest.raises(NotAnImage, match="DICOM"):
        decode_image(tmp_path / "scan")  # the standard decoder leaves DICOM to open_study
    with pytest.raises(ImagingError, match="scan"):
        model_picture(tmp_path / "scan")  # a DICM marker with nothing after it


def test_error_family():
    for error in (ImageNotFound, NotAnImage, CorruptFile, TooLarge, InvalidWindow):
        assert issubclass(error, ImagingError) and issubclass(error, ValueError)


# -- sizes for the model ---------------------------------------------------------------------------------


def test_model_picture_bounds_area_keeps_aspect_and_sides_are_patches(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (1600, 800), (10, 20, 30)).save(path)
    small = model_picture(path, bounds=PixelBounds(3136, 200_000))
    assert small.width * small.height <= 200_000 and small.width % 28 == 0 and small.height % 28 == 0
    assert abs(small.width / small.height - 2) < 0.05
    assert model_picture(path, bounds=PixelBounds(image_size=384)).size == (392, 392)  # Med-R1's 384, then 28s
    tiny = model_picture(encode(Image.new("L", (10, 10)), "PNG"), bounds=PixelBounds(min_pixels=3136))
    assert tiny.size == (56, 56) and tiny.mode == "RGB"


def test_model_picture_leaves_a_model_sized_picture_untouched():
    image = Image.new("RGB", (112, 56), (1, 2, 3))
    assert np.array_equal(np.asarray(model_picture(image)), np.asarray(image))


def test_model_picture_of_a_render_equals_the_file_path():
    source = Image.fromarray((np.arange(900 * 700) % 256).astype(np.uint8).reshape(700, 900))
    data = encode(source, "PNG")
    bounds = PixelBounds(3136, 100_000)
    study = open_study(data)
    from_study, from_bytes = model_picture(study, bounds=bounds), model_picture(data, bounds=bounds)
    assert np.array_equal(np.asarray(from_study), np.asarray(from_bytes))


# -- the app's ImageStudy --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        Image.fromarray(ramp16()),
        Image.new("RGBA", (9, 7), (1, 2, 3, 100)),
        Image.new("CMYK", (9, 7), (0, 255, 0, 0)),
        Image.new("L", (9, 7), 77),
    ],
    ids=["I16", "RGBA", "CMYK", "L"],
)
def test_default_render_is_exactly_what_training_sees(image):
    data = encode(image, "TIFF")
    study = open_study(data, name="x.tif")
    assert study.kind == "image" and study.default_window is None and study.presets == {}
    assert np.array_equal(np.asarray(study.render()), np.asarray(to_rgb(decode_image(data).image)))


def test_windowing_16bit_png_on_stored_values():
    values = np.array([[0, 1000, 2000, 3000, 65535]], dtype=np.uint16)
    study = open_study(encode(Image.fromarray(values), "PNG"))
    row = np.asarray(study.render(window=(2000, 2001)))[0, :, 0]
    assert list(row) == [0, 0, 128, 255, 255]
    full = study.resolve_window(window="full")
    assert full.center == pytest.approx(65535 / 2) and full.width == pytest.approx(65535)
    assert np.asarray(study.render(window="full"))[0, -1, 0] == 255
    with pytest.raises(InvalidWindow, match="unknown window"):
        study.render(window="lung")  # CT presets do not exist for a PNG
    with pytest.raises(InvalidWindow, match="positive"):
        study.render(window=(100, 0))


def test_colour_window_stretches_each_channel():
    study = open_study(encode(Image.new("RGB", (2, 2), (100, 150, 200)), "PNG"))
    assert study.is_color
    # DICOM LINEAR: y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255 -> 100: 1.3, 150: 128.8, 200: 255
    assert study.render(window=(150, 101)).getpixel((0, 0)) == (1, 129, 255)


def test_png_export_is_lossless_grey_when_grey_and_carries_no_metadata():
    grey = Image.fromarray((np.arange(64 * 64) % 256).astype(np.uint8).reshape(64, 64)).convert("RGB")
    data = to_png_bytes(grey)
    reread = Image.open(io.BytesIO(data))
    assert reread.mode == "L" and np.array_equal(np.asarray(reread.convert("RGB")), np.asarray(grey))
    colour = Image.new("RGB", (3, 3), (1, 2, 3))
    assert Image.open(io.BytesIO(to_png_bytes(colour))).getpixel((1, 1)) == (1, 2, 3)
    for chunk in (b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"tIME"):
        assert chunk not in data


def test_in_memory_pil_image_study_and_frame_errors():
    study = open_study(Image.new("RGB", (5, 4), (9, 9, 9)))
    assert study.num_frames == 1 and study.size == (5, 4)
    with pytest.raises(ImagingError, match="frame 1 does not exist"):
        study.render(1)
