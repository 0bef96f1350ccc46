"""DICOM ingestion: every bundled pydicom example, generated files of every kind, privacy, errors.

Expected pixels are computed independently (pydicom's own decoders and the DICOM window formula),
so a wrong LUT order, a missing inversion or a mis-located frame fails a test.
"""

from __future__ import annotations

import io
import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pydicom.examples
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.pixels import apply_color_lut, convert_color_space, pixel_array
from pydicom.sequence import Sequence
from pydicom.uid import (
    MPEG4HP41,
    ComprehensiveSRStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLossless,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from train.imaging import (
    BURNED_IN_WARNING,
    CT_PRESETS,
    CorruptFile,
    FrameOutOfRange,
    ImagingError,
    InvalidWindow,
    NoPixelData,
    NotAnImage,
    TooLarge,
    UnsupportedCodec,
    UnsupportedDicom,
    Window,
    codec_table,
    open_study,
    sniff,
    to_png_bytes,
)
from train.imaging import codecs as codecs_module
from train.imaging.__main__ import main as cli_main
from train.imaging.metadata import ALLOWED
from train.imaging.synthetic import (
    ct_phantom,
    functional_groups,
    gdcm_transcode,
    make_dataset,
    save,
    to_bytes,
    write_large_multiframe,
)


def linear(values, centre: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 LINEAR window to 0..255, written independently of the module."""
    y = ((np.asarray(values, dtype=np.float64) - (centre - 0.5)) / (width - 1) + 0.5) * 255
    return np.clip(np.floor(np.clip(y, 0, 255) + 0.5), 0, 255).astype(np.uint8)


def grey(study, frame=0, window=None) -> np.ndarray:
    rgb = np.asarray(study.render(frame, window))
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    return rgb[..., 0]


def ct_dataset(rows=64, columns=64, **attributes) -> tuple[Dataset, np.ndarray]:
    hu = ct_phantom(rows, columns)
    stored = (hu + 1024).astype(np.int16)
    attributes = {"RescaleSlope": 1, "RescaleIntercept": -1024, **attributes}
    return make_dataset(stored, modality="CT", **attributes), hu


# -- the bundled pydicom examples ----------------------------------------------------------------------

EXAMPLES = {
    "ct": ("dicom", 1, False),
    "mr": ("dicom", 1, False),
    "overlay": ("dicom", 1, False),
    "rt_dose": ("dicom", 15, False),
    "rgb_color": ("dicom", 1, True),
    "ybr_color": ("dicom", 30, True),
    "jpeg2k": ("dicom", 1, True),
    "palette_color": ("dicom", 1, True),
    "dicomdir": (NoPixelData, "DICOMDIR"),
    "rt_plan": (NoPixelData, "RT Plan"),
    "rt_ss": (NoPixelData, "structure set"),
    "waveform": (NoPixelData, "waveform"),
    # no_meta.dcm as shipped starts with a stray byte before its first tag: pydicom itself parses it as
    # garbage (one UN element), so refusing it as "not DICOM" is the honest outcome.
    "no_meta": (NotAnImage, "not a DICOM file"),
}


def test_every_bundled_example_is_covered():
    assert set(pydicom.examples._DATASETS) == set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_bundled_example(name):
    path = pydicom.examples.get_path(name)
    expected = EXAMPLES[name]
    if isinstance(expected[0], type):
        with pytest.raises(expected[0], match=expected[1]) as info:
            open_study(path)
        assert str(info.value).startswith(Path(path).name)
        return
    kind, frames, colour = expected
    study = open_study(path)
    assert (study.kind, study.num_frames, study.is_color) == (kind, frames, colour)
    for frame in {0, frames // 2, frames - 1}:
        image = study.render(frame)
        assert image.mode == "RGB" and image.size == study.size
    assert study.metadata["frames"] == frames


def test_ct_example_is_windowed_in_hounsfield_units():
    path = pydicom.examples.get_path("ct")
    study = open_study(path)
    ds = pydicom.dcmread(path)
    hu = pixel_array(ds).astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    # No window tags and no body part: the soft-tissue (abdomen) preset.
    assert study.default_window == CT_PRESETS["abdomen"]
    assert np.array_equal(grey(study), linear(hu, 50, 400))
    assert np.array_equal(grey(study, window="lung"), linear(hu, -600, 1500))
    assert np.array_equal(grey(study, window=(300, 2000)), linear(hu, 300, 2000))


def test_mr_and_overlay_examples_use_their_own_window_tags():
    mr = open_study(pydicom.examples.get_path("mr"))
    assert mr.default_window == Window(600, 1600) and "file" in mr.presets
    overlay = open_study(pydicom.examples.get_path("overlay"))
    assert overlay.presets == {"file": Window(450, 790), "file 2": Window(200, 443)}
    values = pixel_array(pydicom.examples.get_path("overlay"))
    assert np.array_equal(grey(overlay, window="file 2"), linear(values, 200, 443))


@pytest.mark.parametrize(("name", "frame"), [("rgb_color", 0), ("ybr_color", 15), ("jpeg2k", 0)])
def test_colour_examples_match_pydicom_rgb(name, frame):
    path = pydicom.examples.get_path(name)
    reference = pixel_array(path, index=frame)  # pydicom converts YBR to RGB itself
    rendered = np.asarray(open_study(path).render(frame)).astype(int)
    assert np.abs(rendered - reference).max() <= 1


def test_palette_example_goes_through_its_colour_lut():
    path = pydicom.examples.get_path("palette_color")
    ds = pydicom.dcmread(path)
    lut = apply_color_lut(pixel_array(ds), ds)
    expected = np.rint(lut.astype(np.float64) * 255 / 65535) if lut.dtype == np.uint16 else lut
    assert np.abs(np.asarray(open_study(path).render()).astype(int) - expected).max() <= 1


# -- generated: bit depths, signedness, photometric ----------------------------------------------------


def test_signed_ct_without_window_tags_uses_body_part_preset():
    ds, hu = ct_dataset(BodyPartExamined="HEAD")
    study = open_study(to_bytes(ds), name="head.dcm")
    assert study.default_window == CT_PRESETS["brain"] == Window(40, 80)
    assert np.array_equal(grey(study), linear(hu, 40, 80))
    assert set(CT_PRESETS) <= set(study.presets)


def test_ct_presets_are_the_standard_ones():
    width_level = {name: (w.width, w.center) for name, w in CT_PRESETS.items()}
    assert width_level["brain"] == (80, 40) and width_level["lung"] == (1500, -600)
    assert width_level["mediastinum"] == (350, 50) and width_level["abdomen"] == (400, 50)
    assert width_level["liver"] == (150, 30) and width_level["bone"] == (1800, 400)
    assert {"subdural", "stroke"} <= set(CT_PRESETS)


def test_ct_with_window_tags_prefers_them():
    ds, hu = ct_dataset(BodyPartExamined="HEAD", WindowCenter=[35, 500], WindowWidth=[90, 2000])
    study = open_study(to_bytes(ds))
    assert study.default_window == Window(35, 90) and study.presets["file 2"] == Window(500, 2000)
    assert np.array_equal(grey(study), linear(hu, 35, 90))


def test_signed_ct_with_negative_stored_values_and_rescale_slope():
    hu = ct_phantom(32, 32)
    stored = (hu * 2).astype(np.int16)  # slope 0.5: stored values go negative
    ds = make_dataset(stored, modality="CT", RescaleSlope=0.5, RescaleIntercept=0)
    assert np.array_equal(grey(open_study(to_bytes(ds)), window="bone"), linear(stored * 0.5, 400, 1800))


@pytest.mark.parametrize(
    ("dtype", "bits_stored"), [(np.uint8, 8), (np.int8, 8), (np.uint16, 12), (np.int16, 12), (np.uint16, 16)]
)
def test_bit_depths_without_window_use_percentile_window(dtype, bits_stored):
    info = np.iinfo(dtype)
    low, high = max(info.min, -(2 ** (bits_stored - 1))), min(info.max, 2 ** (bits_stored - int(info.min < 0)) - 1)
    values = np.linspace(low, high, 32 * 32).reshape(32, 32).astype(dtype)
    study = open_study(to_bytes(make_dataset(values, modality="MR", bits_stored=bits_stored)))
    assert study.default_window is None
    picture = grey(study)
    assert picture.min() == 0 and picture.max() == 255
    assert (np.diff(picture.ravel().astype(int)) >= 0).all()
    window = study.resolve_window()
    lo, hi = np.percentile(values.astype(np.float64), [0.5, 99.5])
    assert window.center == pytest.approx((lo + hi) / 2, rel=1e-3, abs=0.5)


def test_monochrome1_is_inverted():
    values = np.linspace(0, 4095, 64 * 64).reshape(64, 64).astype(np.uint16)
    common = {"bits_stored": 12, "modality": "CR", "WindowCenter": 2048, "WindowWidth": 4096}
    mono2 = grey(open_study(to_bytes(make_dataset(values, **common))))
    mono1 = grey(open_study(to_bytes(make_dataset(values, photometric="MONOCHROME1", **common))))
    assert np.array_equal(mono1, 255 - mono2)
    assert mono1[0, 0] == 255  # the lowest value is white in MONOCHROME1


def test_rgb_16bit_and_ybr_full_native():
    rgb = np.random.default_rng(1).integers(0, 255, (16, 24, 3), dtype=np.uint8)
    wide = (rgb.astype(np.uint16) * 257).astype(np.uint16)
    study = open_study(to_bytes(make_dataset(wide, photometric="RGB")))
    assert study.is_color and np.abs(np.asarray(study.render()).astype(int) - rgb).max() <= 1
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    study = open_study(to_bytes(make_dataset(ybr, photometric="YBR_FULL")))
    assert np.abs(np.asarray(study.render()).astype(int) - rgb).max() <= 3


def test_float_pixel_data():
    values = np.linspace(-1.5, 3.0, 64).reshape(8, 8).astype(np.float32)
    ds = make_dataset(np.zeros((8, 8), np.uint8), modality="PT")
    for keyword in ("PixelData", "BitsStored", "HighBit", "PixelRepresentation"):
        delattr(ds, keyword)
    ds.BitsAllocated = 32
    ds.FloatPixelData = values.tobytes()
    study = open_study(to_bytes(ds))
    assert np.array_equal(grey(study, window="full"), np.clip(np.floor((values + 1.5) / 4.5 * 255 + 0.5), 0, 255))


def test_sigmoid_voi_function_is_honoured():
    values = np.array([[0, 100, 200]], dtype=np.uint16)
    ds = make_dataset(values, WindowCenter=100, WindowWidth=50, VOILUTFunction="SIGMOID")
    row = grey(open_study(to_bytes(ds)))[0]
    assert row[1] == 128 and row[0] < 5 and row[2] > 250


def test_voi_lut_table_is_used_when_there_is_no_window():
    ds, hu = ct_dataset(rows=32, columns=32)
    ds.Modality = "OT"
    item = Dataset()
    item.add_new("LUTDescriptor", "SS", [256, -200, 8])
    item.add_new("LUTData", "US", list(range(255, -1, -1)))
    ds.VOILUTSequence = Sequence([item])
    study = open_study(to_bytes(ds))
    expected = 255 - np.clip(hu + 200, 0, 255)  # inverted ramp starting at HU -200
    assert study.default_window is None and study.resolve_window() is None
    assert np.array_equal(grey(study), expected.astype(np.uint8))


def test_modality_lut_table():
    stored = np.arange(16, dtype=np.uint16).reshape(4, 4)
    ds = make_dataset(stored, modality="OT", WindowCenter=50, WindowWidth=101)
    item = Dataset()
    item.add_new("LUTDescriptor", "US", [16, 0, 16])
    item.add_new("LUTData", "US", [v * 10 for v in range(16)])
    item.ModalityLUTType = "OD"
    ds.ModalityLUTSequence = Sequence([item])
    assert np.array_equal(grey(open_study(to_bytes(ds))), linear(stored * 10, 50, 101))


def test_padding_is_ignored_by_the_auto_window():
    values = np.full((32, 32), -2000, dtype=np.int16)
    values[8:24, 8:24] = np.arange(256).reshape(16, 16)
    ds = make_dataset(values, modality="MR", PixelPaddingValue=-2000)
    ds["PixelPaddingValue"].VR = "SS"
    window = open_study(to_bytes(ds)).resolve_window(window="auto")
    assert window.center - window.width / 2 > -10  # the padding did not drag the window down


# -- multi-frame ------------------------------------------------------------------------------------


def test_native_multiframe_decodes_the_requested_frame(tmp_path):
    path = write_large_multiframe(tmp_path / "series", frames=6, rows=48, columns=40)
    study = open_study(path)
    assert study.num_frames == 6 and study.size == (40, 48)
    base = ct_phantom(48, 40).astype(np.float64)
    for frame in (0, 5, 3):
        assert np.array_equal(grey(study, frame, (40, 400)), linear(base + frame, 40, 400))
    with pytest.raises(FrameOutOfRange, match="numbered 0 to 5"):
        study.render(6)
    with pytest.raises(FrameOutOfRange):
        study.render(-1)


def test_enhanced_multiframe_per_frame_functional_groups():
    frames = np.stack([np.full((8, 8), 100 * (i + 1), dtype=np.uint16) for i in range(3)])
    per_frame = [
        {
            "PixelValueTransformationSequence": {"RescaleSlope": 1, "RescaleIntercept": -50 * i, "RescaleType": "US"},
            "FrameVOILUTSequence": {"WindowCenter": 60 * (i + 1), "WindowWidth": 100 + i},
        }
        for i in range(3)
    ]
    shared = {"PixelMeasuresSequence": {"PixelSpacing": [0.5, 0.5], "SliceThickness": 1.25}}
    ds = make_dataset(frames, modality="MR", multi_frame=True, **functional_groups(per_frame, shared))
    study = open_study(to_bytes(ds))
    assert study.metadata["pixel_spacing_mm"] == [0.5, 0.5] and study.metadata["slice_thickness_mm"] == 1.25
    assert study.metadata["window_center"] == [60]
    for i in range(3):
        value = 100 * (i + 1) - 50 * i
        assert study.resolve_window(i) == Window(60 * (i + 1), 100 + i)
        assert grey(study, i)[0, 0] == linear([value], 60 * (i + 1), 100 + i)[0]


# -- compressed transfer syntaxes ----------------------------------------------------------------------


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless], ids=["rle", "jpegls", "j2k"])
def test_lossless_encodings_render_identically(syntax):
    ds, hu = ct_dataset(rows=48, columns=56)
    reference = grey(open_study(to_bytes(ds)))
    compressed = open_study(to_bytes(make_dataset((hu + 1024).astype(np.int16), modality="CT", RescaleSlope=1,
                                                  RescaleIntercept=-1024, transfer_syntax=syntax)))  # fmt: skip
    assert compressed.metadata["transfer_syntax"] == codecs_module.describe(syntax)
    assert np.array_equal(grey(compressed), reference)


def test_compressed_multiframe_picks_the_right_frame():
    frames = np.stack([np.full((16, 16), 10 * i, dtype=np.uint8) for i in range(5)])
    for syntax in (RLELossless, JPEGLSLossless):
        ds = make_dataset(frames, multi_frame=True, transfer_syntax=syntax, WindowCenter=127.5, WindowWidth=256)
        study = open_study(to_bytes(ds))
        assert [grey(study, i)[0, 0] for i in (4, 1)] == list(linear([40, 10], 127.5, 256))


def test_jpeg_ls_near_lossless_stays_near():
    ds, hu = ct_dataset(rows=32, columns=32)
    ds.compress(JPEGLSNearLossless, jls_error=2)
    study = open_study(to_bytes(ds))
    assert np.abs(grey(study, window=(0, 4096)).astype(int) - linear(hu, 0, 4096)).max() <= 1


def test_jpeg_baseline_greyscale():
    values = (np.add.outer(np.arange(64), np.arange(64)) * 2).astype(np.uint8)
    jpeg = io.BytesIO()
    Image.fromarray(values).save(jpeg, "JPEG", quality=95)
    ds = make_dataset(values, WindowCenter=127.5, WindowWidth=256)
    ds.PixelData = encapsulate([jpeg.getvalue()])
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    assert np.abs(grey(open_study(to_bytes(ds))).astype(int) - values).max() <= 3


def test_jpeg_lossless_process14_decodes_through_python_gdcm():
    ds, _ = ct_dataset(rows=40, columns=40)
    for syntax in ("JPEGLosslessProcess14", "JPEGLosslessProcess14_1"):
        study = open_study(gdcm_transcode(ds, syntax))
        assert "JPEG Lossless" in study.metadata["transfer_syntax"]
        assert np.array_equal(grey(study), grey(open_study(to_bytes(ds))))


def test_12bit_jpeg_names_the_only_decoder():
    ds, _ = ct_dataset(rows=32, columns=32)
    ds.BitsStored, ds.HighBit = 12, 11
    with pytest.raises(UnsupportedCodec, match=r"pylibjpeg-libjpeg.*GPL-3\.0"):
        open_study(gdcm_transcode(ds, "JPEGExtendedProcess2_4"))


def test_truncated_jpeg_ls_frame_fails_fast():
    # Regression (found by fuzzing): CharLS spent >10 s on a JPEG-LS frame missing its last bytes.
    ds, _ = ct_dataset(rows=32, columns=32)
    ds.compress(JPEGLSLossless)
    data = to_bytes(ds)
    for cut in (12, 10, 40):
        start = time.perf_counter()
        with pytest.raises(CorruptFile, match="truncated"):
            open_study(data[:-cut], name="cut.dcm")
        assert time.perf_counter() - start < 2


def test_missing_plugin_message_names_the_package(monkeypatch):
    real = codecs_module.get_decoder

    class Unavailable:
        is_available = False

    monkeypatch.setattr(codecs_module, "get_decoder", lambda uid: Unavailable() if uid == JPEGLossless else real(uid))
    with pytest.raises(UnsupportedCodec, match=r"JPEG Lossless.*pip install python-gdcm.*Apache-2.0"):
        codecs_module.require_decoder(JPEGLossless, "scan.dcm")


def test_video_transfer_syntax_is_explained():
    ds = make_dataset(np.zeros((16, 16), np.uint8))
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(60)])
    ds.file_meta.TransferSyntaxUID = MPEG4HP41
    with pytest.raises(UnsupportedCodec, match="video"):
        open_study(to_bytes(ds), name="clip.dcm")


def test_every_known_syntax_has_an_installed_decoder():
    # The licence table in the README promises these; a missing dependency fails here.
    missing = [label for _, label, plugins in codec_table() if not plugins]
    assert missing == []


def test_deflated_dataset():
    ds, hu = ct_dataset(rows=24, columns=24, WindowCenter=40, WindowWidth=400)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    study = open_study(to_bytes(ds))
    assert study.metadata["transfer_syntax"] == "uncompressed, zip-deflated"
    assert np.array_equal(grey(study), linear(hu, 40, 400))


# -- sniffing ---------------------------------------------------------------------------------------------


def test_dicom_without_preamble_or_extension(tmp_path):
    ds, hu = ct_dataset(rows=24, columns=24, WindowCenter=40, WindowWidth=400)
    del ds.file_meta
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=True, little_endian=True, enforce_file_format=False)
    data = buffer.getvalue()
    assert b"DICM" not in data[:132] and sniff(data[:132]) == "dicom-raw"
    (tmp_path / "IM000001").write_bytes(data)
    study = open_study(tmp_path / "IM000001")
    assert study.kind == "dicom" and np.array_equal(grey(study), linear(hu, 40, 400))


def test_renamed_files_are_recognised_by_content(tmp_path):
    png = io.BytesIO()
    Image.new("L", (4, 4), 9).save(png, "PNG")
    (tmp_path / "scan.dcm").write_bytes(png.getvalue())
    assert open_study(tmp_path / "scan.dcm").kind == "image"
    ds, _ = ct_dataset(rows=8, columns=8)
    (tmp_path / "photo.png").write_bytes(to_bytes(ds))
    assert open_study(tmp_path / "photo.png").kind == "dicom"


def test_forced_parse_requires_pixel_data_rows_and_columns():
    junk = b"\x08\x00\x16\x00\x04\x00abcd" + b"this is not really dicom" * 3
    with pytest.raises((NotAnImage, CorruptFile)):
        open_study(junk, name="odd.bin")
    ds = Dataset()
    ds.SOPClassUID = ComprehensiveSRStorage
    ds.Modality = "SR"
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=True, little_endian=True, enforce_file_format=False)
    with pytest.raises(NoPixelData, match="structured report"):
        open_study(buffer.getvalue(), name="report")


# -- validation errors ----------------------------------------------------------------------------------


def test_structured_report_with_preamble():
    ds = make_dataset(np.zeros((2, 2), np.uint8))
    del ds.PixelData
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = ComprehensiveSRStorage
    ds.Modality = "SR"
    with pytest.raises(NoPixelData, match="no pixel data: this is a structured report"):
        open_study(to_bytes(ds), name="report.dcm")


def test_truncated_native_pixel_data(tmp_path):
    ds, _ = ct_dataset(rows=64, columns=64)
    data = to_bytes(ds)
    with pytest.raises(CorruptFile, match="truncated"):
        open_study(data[: len(data) - 1000], name="cut.dcm")


def test_truncated_compressed_pixel_data():
    ds, _ = ct_dataset(rows=64, columns=64)
    ds.compress(RLELossless)
    data = to_bytes(ds)
    with pytest.raises(CorruptFile):
        open_study(data[: len(data) - 2000], name="cut.dcm")


def test_missing_rows_is_corrupt():
    ds, _ = ct_dataset(rows=8, columns=8)
    del ds.Rows
    with pytest.raises(CorruptFile, match="Rows"):
        open_study(to_bytes(ds))


def test_absurd_dimensions_are_refused_before_decoding():
    ds = make_dataset(np.zeros((2, 2), np.uint8))
    ds.Rows, ds.Columns, ds.NumberOfFrames = 60000, 60000, 1
    with pytest.raises(TooLarge, match="megapixels"):
        open_study(to_bytes(ds))


def test_unsupported_photometric_and_layout():
    ds = make_dataset(np.zeros((4, 4, 3), np.uint8), photometric="RGB")
    ds.PhotometricInterpretation = "HSV"
    with pytest.raises(UnsupportedDicom, match="colour model HSV"):
        open_study(to_bytes(ds))
    ds = make_dataset(np.zeros((4, 4), np.uint8))
    ds.SamplesPerPixel = 2
    with pytest.raises(UnsupportedDicom, match="samples"):
        open_study(to_bytes(ds))


def test_window_argument_errors():
    study = open_study(to_bytes(ct_dataset(rows=8, columns=8)[0]))
    with pytest.raises(InvalidWindow, match=r"unknown window 'lungs'.*lung"):
        study.render(window="lungs")
    for bad in [(40, 0), (40, -5), (float("nan"), 10), (1, 2, 3), 7]:
        with pytest.raises(InvalidWindow):
            study.render(window=bad)
    assert study.render(window="LUNG").size == (8, 8)  # names are case-insensitive


# -- privacy ----------------------------------------------------------------------------------------------

PHI = {
    "PatientName": "Zyxwvut^Quinella",
    "PatientID": "PID-99317",
    "PatientBirthDate": "19410317",
    "StudyDate": "20240229",
    "SeriesDate": "20240228",
    "AcquisitionDateTime": "20240227101010",
    "InstitutionName": "Saint Obscura Hospital",
    "InstitutionAddress": "12 Hidden Lane, Nowhere",
    "AccessionNumber": "ACC771245",
    "ReferringPhysicianName": "Doctor^Mysterio",
    "OperatorsName": "Tech^Anonyma",
    "PerformingPhysicianName": "Perf^Ormer",
    "StudyDescription": "Secret study about Quinella",
    "SeriesDescription": "Series Zyxwvut",
    "StationName": "STATION-KRYPTO",
    "DeviceSerialNumber": "SN-4242-XYZ",
    "OtherPatientIDs": "OPID-5555",
    "PatientAddress": "99 Private Road",
    "StudyID": "STUDY-31337",
    "ImageComments": "Patient Quinella complains",
}
PHI_TOKENS = [
    "Zyxwvut", "Quinella", "PID-99317", "19410317", "20240229", "20240228", "20240227", "Obscura",
    "Hidden Lane", "ACC771245", "Mysterio", "Anonyma", "Perf^Ormer", "Ormer", "KRYPTO", "4242", "OPID",
    "Private Road", "31337",
]  # fmt: skip


def phi_dataset(**extra) -> Dataset:
    ds, _ = ct_dataset(rows=16, columns=16, BurnedInAnnotation="YES", **extra)
    for keyword, value in PHI.items():
        setattr(ds, keyword, value)
    ds.BodyPartExamined = "QUINELLA^Z"  # PHI typed into a technical field must be dropped, not shown
    return ds


def assert_no_phi(text: str) -> None:
    for token in PHI_TOKENS:
        assert token.lower() not in text.lower(), token


def test_no_phi_in_metadata_repr_warnings_logs_or_outputs(tmp_path, caplog, capsys):
    path = save(phi_dataset(), tmp_path / "phi.dcm")
    caplog.clear()  # building the file warns about the bad code string; only reading it is under test
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study = open_study(path)
        study.render(0, "lung")
        png = to_png_bytes(study.render())
    assert BURNED_IN_WARNING in study.warnings
    assert "body_part" not in study.metadata
    assert cli_main(["info", str(path)]) == 0
    texts = [json.dumps(study.metadata), repr(study), str(study), *study.warnings, caplog.text]
    texts += [str(w.message) for w in caught] + list(capsys.readouterr())
    for text in texts:
        assert_no_phi(text)
    assert not any(token.encode() in png for token in PHI_TOKENS)


def test_no_phi_in_error_messages(caplog):
    failures = []
    report = phi_dataset()
    del report.PixelData
    report.Modality = "SR"
    failures.append(to_bytes(report))
    video = phi_dataset()
    video.PixelData = encapsulate([bytes(64)])
    video.file_meta.TransferSyntaxUID = MPEG4HP41
    failures.append(to_bytes(video))
    whole = to_bytes(phi_dataset())
    failures.append(whole[:-300])
    failures.append(whole[:700])
    odd = phi_dataset()
    odd.PhotometricInterpretation = "HSV"
    failures.append(to_bytes(odd))
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    for data in failures:
        with pytest.raises(ImagingError) as info:
            open_study(data, name="upload.dcm")
        assert_no_phi(str(info.value))
    assert_no_phi(caplog.text)
    study = open_study(whole)
    with pytest.raises(InvalidWindow) as info:
        study.render(window="Quinella")
    assert "Quinella" in str(info.value)  # the user's own input may be echoed; nothing from the file is


def test_metadata_keys_come_from_the_allow_list():
    allowed = {key for key, _, _ in ALLOWED} | {"frames", "transfer_syntax"}
    for name in ("ct", "mr", "overlay", "ybr_color", "palette_color", "rt_dose"):
        assert set(open_study(pydicom.examples.get_path(name)).metadata) <= allowed


def test_file_meta_only_transfer_syntax_names():
    assert codecs_module.describe(ExplicitVRLittleEndian) == "uncompressed"
    assert "JPEG 2000" in codecs_module.describe(JPEG2000Lossless)
