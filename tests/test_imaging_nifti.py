"""NIfTI volumes: canonical slices without loading the volume, HU scaling, views, 4-D, and bad volumes.

References come from nibabel itself (``as_closest_canonical(...).get_fdata()``, which loads everything)
and from a DICOM series converted the way dcm2niix converts one: the slice a NIfTI shows must be the
slice the DICOM series shows.
"""

from __future__ import annotations

import gzip
import json
import logging
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.orientations import axcodes2ornt, io_orientation, ornt_transform

from train.imaging import (
    CorruptFile,
    NotAnImage,
    SeveralSeries,
    UnsupportedVolume,
    apply_window,
    list_series,
    model_picture,
    open_study,
)
from train.imaging.__main__ import main as cli_main
from train.imaging.nifti import REFORMAT_MAX_RATIO
from train.imaging.synthetic import ct_series, write_nifti, write_series
from train.imaging.window import Window

BUNDLED = Path(nib.__file__).parent / "tests" / "data"
WINDOW = Window(40, 400)


def shown(canonical: np.ndarray) -> np.ndarray:
    """A canonical (RAS) plane [first axis, second axis] as displayed: patient's right on the left, up at the top."""
    return canonical[::-1, ::-1].T


def grey(study, index: int, window=WINDOW) -> np.ndarray:
    return np.asarray(study.render(index, window))[..., 0]


@pytest.mark.parametrize(
    ("name", "shape", "volumes"),
    [
        ("anatomical.nii", (33, 41, 25), 1),
        ("example4d.nii.gz", (128, 96, 24), 2),
        ("functional.nii", (17, 21, 3), 20),
        ("example_nifti2.nii.gz", (32, 20, 12), 2),
    ],
)
def test_nibabels_bundled_volumes_show_nibabels_own_canonical_slices(name, shape, volumes):
    path = BUNDLED / name
    assert path.is_file(), f"nibabel {nib.__version__} no longer ships {name}"
    listing = list_series(path)
    assert len(listing) == volumes and listing[0].slices == shape[2]
    canonical = nib.as_closest_canonical(nib.load(path)).get_fdata(dtype=np.float64)
    canonical = canonical if canonical.ndim == 4 else canonical[..., np.newaxis]
    t = volumes - 1
    study = listing.open(t)
    assert study.num_frames == shape[2] and study.size == shape[:2] and study.frame_noun == "slice"
    window = Window(float(np.median(canonical)), float(np.ptp(canonical)) or 1.0)
    for k in (0, shape[2] // 2, shape[2] - 1):
        expected = apply_window(shown(canonical[:, :, k, t]), window)
        assert np.array_equal(grey(study, k, window), expected), k


def test_a_dicom_series_and_its_nifti_show_the_same_slices_in_every_stored_orientation(tmp_path):
    series = ct_series(12, rows=32, columns=48, spacing=2.0, pixel_spacing=1.0)
    for ds in series:  # an asymmetric mark, so a flip or a transpose would show
        pixels = ds.pixel_array.copy()
        pixels[5:8, 30:40] = 900
        ds.PixelData = pixels.tobytes()
    dicom = open_study(write_series(series, tmp_path / "series.zip"))
    # The dcm2niix conversion: voxel (i, j, k) = (column, row, slice); LPS affine turned RAS.
    row, column = (np.asarray(series[0].ImageOrientationPatient[i : i + 3], float) for i in (0, 3))
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2] = row, column, np.cross(row, column) * 2.0
    lps[:3, 3] = np.asarray(series[0].ImagePositionPatient, float)
    volume = np.stack([ds.pixel_array.T for ds in series], axis=-1).astype(np.int16)
    write_nifti(tmp_path / "lps.nii", volume, affine=np.diag([-1, -1, 1, 1]) @ lps)
    image = nib.load(tmp_path / "lps.nii")
    for codes in (("L", "P", "S"), ("R", "A", "S"), ("P", "S", "L"), ("S", "L", "A"), ("I", "P", "R")):
        turned = image.as_reoriented(ornt_transform(io_orientation(image.affine), axcodes2ornt(codes)))
        path = tmp_path / f"{''.join(codes)}.nii.gz"
        nib.save(turned, path)
        nifti = open_study(path)
        assert nifti.metadata["orientation"] == "".join(codes) and nifti.num_frames == 12
        for k in range(12):
            assert np.array_equal(grey(nifti, k), grey(dicom, k)), (codes, k)


def test_reformats_are_nibabels_canonical_planes_and_thick_slices_are_not_stretched_past_the_limit(tmp_path):
    path = BUNDLED / "anatomical.nii"
    canonical = nib.as_closest_canonical(nib.load(path)).get_fdata()
    study = open_study(path)
    assert study.views == ("axial", "coronal", "sagittal") and study.view == "axial"
    sagittal, coronal = study.reformat("sagittal"), study.reformat("coronal")
    window = Window(3000, 6000)
    assert sagittal.num_frames == 33 and sagittal.size == (41, 25)
    assert np.array_equal(grey(sagittal, 10, window), apply_window(shown(canonical[10, :, :]), window))
    assert coronal.num_frames == 41 and np.array_equal(
        grey(coronal, 20, window), apply_window(shown(canonical[:, 20, :]), window)
    )
    thick = np.zeros((64, 64, 20), np.int16)
    write_nifti(tmp_path / "thick.nii", thick, zooms=(0.5, 0.5, 5.0))
    axial_only = open_study(tmp_path / "thick.nii")
    assert axial_only.views == ("axial",) and REFORMAT_MAX_RATIO == 3.0
    with pytest.raises(UnsupportedVolume, match="sagittal view would stretch its pixels more than 3 times"):
        axial_only.reformat("sagittal")
    squashed = np.zeros((64, 64, 30), np.int16)
    write_nifti(tmp_path / "squashed.nii", squashed, zooms=(1.0, 1.0, 2.0))
    assert open_study(tmp_path / "squashed.nii", view="coronal").size == (64, 60), "square pixels: 30 x 2 mm"


def test_scaled_integers_come_out_in_hounsfield_units_with_the_ct_presets(tmp_path):
    hu = np.full((48, 48, 16), -1000.0)
    hu[12:36, 12:36, :] = 40.0
    hu[20:28, 20:28, 8] = 1000.0
    stored = ((hu + 1024) / 0.5).astype(np.int16)  # scl_slope 0.5, scl_inter -1024
    path = write_nifti(tmp_path / "ct.nii.gz", stored, zooms=(0.7, 0.7, 2.5), slope=0.5, inter=-1024)
    study = open_study(path)
    assert study.metadata["value_units"] == "HU (from the values)" and study.metadata["rescale_slope"] == 0.5
    assert "brain" in study.window_choices and study.default_window == (50, 400)
    brain = grey(study, 8, "brain")
    assert brain[24, 24] == 255 and brain[14, 14] == 129 and brain[0, 0] == 0  # bone, 40 HU (80-wide window), air
    plain = np.random.default_rng(0).integers(0, 800, (32, 32, 8)).astype(np.int16)  # an MR: no HU
    mr = open_study(write_nifti(tmp_path / "mr.nii", plain))
    assert mr.presets == {} and "value_units" not in mr.metadata and mr.window_choices == ("auto", "full")
    assert mr.resolve_window(0) == mr.resolve_window(7), "one window for the whole volume"


def test_a_4d_volume_asks_which_volume(tmp_path):
    data = np.stack([np.full((16, 16, 6), 100 * (t + 1), np.int16) for t in range(3)], axis=-1)
    data[..., 2] += np.arange(16, dtype=np.int16)[:, None, None]
    path = write_nifti(tmp_path / "dwi.nii.gz", data, zooms=(2.0, 2.0, 2.0, 3.0))
    with pytest.raises(SeveralSeries) as info:
        open_study(path)
    assert str(info.value).startswith("dwi.nii.gz holds 3 volumes: choose one. 0: Volume 0 (of 3) · 6 slices")
    third = info.value.listing.open(2)
    assert third.name == "dwi.nii.gz, volume 2" and third.metadata["volumes"] == 3
    assert not np.array_equal(grey(third, 3, "full"), grey(open_study(path, series=0), 3, "full"))


def test_nan_voxels_are_black_with_a_warning_and_the_rest_is_unaffected(tmp_path):
    data = np.linspace(0, 100, 16 * 16 * 8, dtype=np.float32).reshape(16, 16, 8)
    data[0:4, 0:4, :] = np.nan
    data[..., 7] = np.nan
    study = open_study(write_nifti(tmp_path / "nan.nii", data))
    assert "Some voxels are not numbers (NaN or infinite); they are shown black." in study.warnings
    picture = grey(study, 3, "auto")
    assert (picture[-4:, -4:] == 0).all() and picture.max() == 255  # right-left flipped on screen
    assert (grey(study, 7, "auto") == 0).all(), "an all-NaN slice is black, not an error"


@pytest.mark.parametrize("damage", ["empty", "truncated", "truncated-gz", "gzip-not-nifti", "pair", "rgb", "5d"])
def test_bad_volumes_are_refused_in_plain_words(tmp_path, damage):
    noise = np.random.default_rng(0).integers(0, 1000, (32, 32, 8)).astype(np.int16)  # incompressible enough
    good = write_nifti(tmp_path / "good.nii", noise)
    raw = bytearray(good.read_bytes())
    path = tmp_path / "bad.nii"
    if damage == "empty":
        raw[42:44] = (0).to_bytes(2, "little")  # dim[1] = 0
        path.write_bytes(raw)
        error, message = CorruptFile, "the volume holds no voxels (its shape is 0 × 32 × 8)"
    elif damage == "truncated":
        path.write_bytes(raw[:-100])
        error, message = CorruptFile, "the volume is truncated: its header announces 16,736 bytes of data"
    elif damage == "truncated-gz":
        path = tmp_path / "bad.nii.gz"
        path.write_bytes(gzip.compress(bytes(raw))[:-3000])
        error, message = CorruptFile, "bad.nii.gz: the volume is truncated"
    elif damage == "gzip-not-nifti":
        path = tmp_path / "notes.gz"
        path.write_bytes(gzip.compress(b"just text" * 100))
        error, message = NotAnImage, "a gzip file that does not hold a NIfTI volume"
    elif damage == "pair":
        raw[344:348] = b"ni1\x00"
        path.write_bytes(raw)
        error, message = NotAnImage, "the header of a NIfTI .hdr/.img pair"
    elif damage == "rgb":
        image = nib.Nifti1Image(np.zeros((4, 4, 2), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")]), np.eye(4))
        nib.save(image, path)
        error, message = UnsupportedVolume, "colour (RGB) NIfTI volumes are not supported"
    else:
        nib.save(nib.Nifti1Image(np.zeros((4, 4, 2, 2, 3), np.int16), np.eye(4)), path)
        error, message = UnsupportedVolume, "a 5-D volume (4 × 4 × 2 × 2 × 3) cannot be shown"
    with pytest.raises(error) as info:
        open_study(path)
    assert message in str(info.value) and str(info.value).startswith(path.name)


def test_an_all_zero_volume_opens_with_a_warning(tmp_path):
    study = open_study(write_nifti(tmp_path / "zeros.nii", np.zeros((16, 16, 5), np.uint8)))
    assert "The sampled slices hold a single value each: the volume may be empty." in study.warnings
    assert grey(study, 2).shape == (16, 16)


def test_bytes_open_like_the_path_and_nothing_of_the_free_text_header_is_read(tmp_path, caplog, capsys):
    image = nib.Nifti1Image(np.arange(16 * 16 * 6, dtype=np.int16).reshape(16, 16, 6), np.diag([1.0, 1.0, 2.0, 1.0]))
    image.header["descrip"] = b"Quinella^Zyxwvut 19410317"
    image.header["aux_file"] = b"PID-99317"
    image.header.extensions.append(nib.nifti1.Nifti1Extension("comment", b"Patient Quinella, MRN PID-99317"))
    path = tmp_path / "scan.nii.gz"
    nib.save(image, path)
    caplog.set_level(logging.DEBUG)
    from_path = open_study(path)
    from_bytes = open_study(path.read_bytes(), name="upload.nii.gz")
    plain = open_study(gzip.decompress(path.read_bytes()))
    assert np.array_equal(grey(from_path, 3, "full"), grey(from_bytes, 3, "full"))
    assert np.array_equal(grey(from_path, 3, "full"), grey(plain, 3, "full"))
    assert cli_main(["info", str(path)]) == 0
    texts = [json.dumps(from_path.metadata), repr(from_path), *from_path.warnings, caplog.text, *capsys.readouterr()]
    for text in texts:
        for token in ("Quinella", "Zyxwvut", "19410317", "PID-99317"):
            assert token not in text


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_showing_a_slice_holds_one_slice_not_the_volume(tmp_path, suffix):
    volume = np.random.default_rng(0).integers(-1000, -984, (256, 256, 128)).astype(np.int16)  # 16 MiB
    path = write_nifti(tmp_path / f"big{suffix}", volume)
    tracemalloc.start()
    study = open_study(path)
    for k in (0, 64, 127):
        model_picture(study, k, "full")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < volume.nbytes / 4, f"peak {peak:,} B for a volume of {volume.nbytes:,} B"


def test_slice_pictures_of_a_volume_and_the_listing_label(tmp_path):
    from train.imaging import slice_pictures

    path = write_nifti(tmp_path / "v.nii", np.zeros((56, 56, 30), np.int16), zooms=(1.0, 1.0, 1.5))
    (info,) = list_series(path)
    assert info.label == "30 slices · axial · 56 × 56 px · 1 × 1 mm, 1.5 mm apart" and info.kind == "volume"
    chosen = slice_pictures(open_study(path), 3)
    assert chosen.indices == (5, 15, 25) and chosen.tokens_per_picture == (4, 4, 4)
