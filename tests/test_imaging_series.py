"""DICOM series from a ZIP, a folder or several files: grouped, ordered in space, checked, one slice at a time.

The series are generated (``train.imaging.synthetic.ct_series``): every slice carries a marker whose value
says which slice it is, file names are shuffled and patient-like, so the tests can check the order a
viewer shows and that no name from inside the upload is ever shown.
"""

from __future__ import annotations

import io
import json
import logging
import stat
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import JPEGLSLossless

from train.imaging import (
    CorruptFile,
    ImagingError,
    MixedStudies,
    NotAnImage,
    PixelBounds,
    SeriesNotFound,
    SeveralSeries,
    UnsafeArchive,
    list_series,
    model_picture,
    open_study,
    slice_pictures,
)
from train.imaging.__main__ import main as cli_main
from train.imaging.metadata import safe_description
from train.imaging.slices import MULTI_SLICE_NOTE, budget_bounds, evenly_spaced, image_tokens
from train.imaging.synthetic import ct_series, make_dataset, to_bytes, write_series

WINDOW = (600, 1200)  # markers of 0 to 1190 HU come out as distinct grey levels
PATIENT = "Quinella^Zyxwvut"
PHI_TOKENS = ("Quinella", "Zyxwvut", "PID-99317", "20240229", "secret-folder")


def member_names(count: int, seed: int = 1) -> list[str]:
    """Patient-like folder and file names, as PACS exports write them (they must never be shown)."""
    rng = np.random.default_rng(seed)
    return [f"{PATIENT}/secret-folder 20240229/IM{rng.integers(1 << 40):011d}" for _ in range(count)]


def marker(study, index: int) -> int:
    """The HU marker of the slice the study shows at ``index``, read back from the rendered picture."""
    grey = int(np.asarray(study.render(index, WINDOW))[0, 0, 0])
    return round((grey / 255 * 1200 + 0.5) / 10)


@pytest.fixture(scope="module")
def two_series():
    """A 120-slice series with slice 60 missing, and an 8-slice series beside it, in one study."""
    main = ct_series(120, rows=32, columns=32, patient_id="PID-99317", patient_name=PATIENT, StudyDate="20240229")
    short = ct_series(
        8, rows=24, columns=24, spacing=5.0, series_number=3, description="SAG T2",
        study_uid=main[0].StudyInstanceUID, patient_id="PID-99317", patient_name=PATIENT,
    )  # fmt: skip
    del main[60]
    return main, short


@pytest.fixture(scope="module")
def study_zip(two_series, tmp_path_factory) -> Path:
    main, short = two_series
    path = write_series([*main, *short], tmp_path_factory.mktemp("zip") / "study.zip", names=member_names(127))
    with zipfile.ZipFile(path, "a") as bundle:  # what else a PACS export holds
        bundle.writestr(f"{PATIENT}/README.txt", "Viewer instructions for Quinella")
        bundle.writestr("__MACOSX/._IM0001", b"\x00\x05\x16\x07 apple double")
    return path


# -- listing and order -----------------------------------------------------------------------------------


def test_a_zip_lists_its_series_by_number_modality_and_slice_count(study_zip):
    listing = list_series(study_zip)
    assert [(s.index, s.series_number, s.modality, s.slices, s.size) for s in listing] == [
        (0, 2, "CT", 119, (32, 32)),
        (1, 3, "CT", 8, (24, 24)),
    ]
    first, second = listing
    assert first.orientation == "axial" and first.slice_spacing_mm == 2.5 and first.pixel_spacing_mm == (0.7, 0.7)
    assert first.label == (
        "Series 2 · CT · “AX HEAD STD” · 119 slices · axial · 32 × 32 px · 0.7 × 0.7 mm, 2.5 mm apart · 1 warning"
    )
    assert second.description == "SAG T2" and second.warnings == ()
    (gap,) = first.warnings
    assert "about 1 slice(s) missing" in gap and "between slices 59 and 60 (5 mm)" in gap and "steps 2.5 mm" in gap
    ignored = "1 file(s) that are not DICOM images (a DICOMDIR, reports, viewer files...) were ignored."
    assert listing.warnings == (ignored,), "the README counts; the __MACOSX litter does not"


def test_slices_are_ordered_along_the_normal_not_by_file_name(study_zip, two_series):
    study = list_series(study_zip).open(0)
    assert study.num_frames == 119 and study.frame_noun == "slice"
    expected = [k for k in range(120) if k != 60]
    assert [marker(study, i) for i in (0, 1, 58, 59, 60, 118)] == [expected[i] for i in (0, 1, 58, 59, 60, 118)]
    positions = [study.slice_position(i) for i in range(study.num_frames)]
    assert positions == sorted(positions) and positions[0] == -150.0
    # Pixel for pixel the slice file's own rendering, window and model picture alike.
    original = to_bytes(two_series[0][59])
    assert np.array_equal(np.asarray(study.render(59, "lung")), np.asarray(open_study(original).render(0, "lung")))
    from_zip = model_picture(study_zip, 59, "lung", series=0)
    assert np.array_equal(np.asarray(from_zip), np.asarray(model_picture(original, 0, "lung")))


def test_several_series_ask_which_and_the_error_opens_any_without_scanning_again(study_zip):
    with pytest.raises(SeveralSeries) as info:
        open_study(study_zip)
    message = str(info.value)
    assert message.startswith("study.zip holds 2 series: choose one.") and "1: Series 3 · CT" in message
    short = info.value.listing.open(1)
    assert (short.num_frames, short.size, short.metadata["series_description"]) == (8, (24, 24), "SAG T2")
    assert open_study(study_zip, series="1").num_frames == 8
    with pytest.raises(SeriesNotFound, match="there is no series 2; this upload holds 2, numbered 0 to 1"):
        open_study(study_zip, series=2)


def test_a_series_can_be_chosen_by_its_uid(study_zip, two_series):
    uid = two_series[1][0].SeriesInstanceUID
    assert open_study(study_zip, series=uid).num_frames == 8
    with pytest.raises(SeriesNotFound, match="no series has the Series Instance UID given"):
        open_study(study_zip, series="1.2.3.4")


def test_a_folder_and_a_drop_of_files_give_the_same_series(two_series, tmp_path):
    main, short = two_series
    folder = write_series([*main, *short], tmp_path / "export", names=member_names(127))
    zipped = write_series([*main, *short], tmp_path / "study.zip")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    dropped = [str(p) for p in files[:60]] + [p.read_bytes() for p in files[60:]]  # paths and bytes mixed
    labels = [s.label for s in list_series(zipped)]
    assert [s.label for s in list_series(folder)] == labels == [s.label for s in list_series(dropped)]
    assert list_series(dropped).name == "127 files"
    pictures = [np.asarray(open_study(source, series=0).render(30, "brain")) for source in (folder, zipped, dropped)]
    assert all(np.array_equal(pictures[0], p) for p in pictures[1:])


def test_metadata_is_the_allow_list_plus_series_facts(study_zip):
    study = open_study(study_zip, series=0)
    assert study.kind == "dicom" and study.metadata["slices"] == study.metadata["frames"] == 119
    assert {"orientation": "axial", "slice_spacing_mm": 2.5, "series_number": 2, "ordered_by": "position"}.items() <= (
        study.metadata.items()
    )
    assert study.window_choices[:2] == ("file", "brain") and study.default_window == (40, 400)


def test_scanning_reads_headers_and_showing_a_slice_holds_one_slice(tmp_path):
    series = ct_series(60, rows=256, columns=256)
    path = write_series(series, tmp_path / "big.zip")
    uncompressed = sum(len(ds.PixelData) for ds in series)
    tracemalloc.start()
    study = open_study(path)
    model_picture(study, 17)
    model_picture(study, 42, "lung")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < uncompressed / 4, f"peak {peak:,} B for a series of {uncompressed:,} B"


# -- warnings on odd series ------------------------------------------------------------------------------


def zipped(datasets, tmp_path, name="odd.zip", extra: dict[str, bytes] | None = None) -> Path:
    path = write_series(datasets, tmp_path / name)
    if extra:
        with zipfile.ZipFile(path, "a") as bundle:
            for member, data in extra.items():
                bundle.writestr(member, data)
    return path


def test_a_corrupt_slice_is_left_out_with_its_position_not_its_file_name(tmp_path):
    series = ct_series(40, rows=16, columns=16)
    damaged = to_bytes(series[30])[:-100]  # the header is fine, the pixel data is cut short
    unreadable = b"\x00" * 128 + b"DICM" + b"\xff" * 64  # not even a header
    extra = {f"{PATIENT}/IM30": damaged, f"{PATIENT}/IM99": unreadable}
    path = zipped(series[:30] + series[31:], tmp_path, extra=extra)
    listing = list_series(path)
    (info,) = listing
    assert info.slices == 39
    left_out = next(w for w in info.warnings if "damaged" in w)
    assert "1 damaged slice(s) left out: slice 30 (at -75.0 mm) of the 40" in left_out and "truncated" in left_out
    assert any("could not be read and were left out (file 41 of 41" in w for w in listing.warnings)
    study = listing.open()
    assert [marker(study, i) for i in (29, 30)] == [29, 31]
    for text in (*listing.warnings, *info.warnings, *study.warnings):
        assert not any(token in text for token in PHI_TOKENS) and "IM30" not in text


def test_a_slice_that_fails_only_when_decoded_says_which_and_the_rest_still_show(tmp_path):
    series = ct_series(10, rows=32, columns=32)
    broken = series[4]
    broken.compress(JPEGLSLossless)
    data = bytearray(to_bytes(broken))
    end = data.rfind(b"\xff\xd9")
    data[end - 6 : end + 2] = b"\x00" * 8  # the end-of-image marker is gone, the lengths still agree
    path = zipped(series[:4] + series[5:], tmp_path, extra={"IM4": bytes(data)})
    study = open_study(path)
    assert study.num_frames == 10
    with pytest.raises(CorruptFile, match=r"odd.zip, slice 4: the slice is truncated .*other slices are unaffected"):
        study.render(4)
    assert marker(study, 5) == 5


def test_copies_shared_positions_mixed_orientation_and_uneven_spacing_are_reported(tmp_path):
    series = ct_series(20, rows=16, columns=16)
    twin = make_dataset(series[7].pixel_array, modality="CT", **{k: series[7].get(k) for k in (
        "SeriesInstanceUID", "StudyInstanceUID", "PatientID", "ImagePositionPatient", "ImageOrientationPatient",
        "InstanceNumber", "SeriesNumber",
    )})  # fmt: skip
    scout = series[12]
    scout.ImageOrientationPatient = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]
    series[15].ImagePositionPatient = [series[15].ImagePositionPatient[0], series[15].ImagePositionPatient[1], -111.0]
    (info,) = list_series(zipped([*series, series[3], twin], tmp_path))
    text = " | ".join(info.warnings)
    assert "1 duplicate copy of the same image left out." in text
    assert "share a position (slices 7 and 8)" in text
    assert "1 of 21 slices have a different orientation" in text
    assert "The slice spacing is uneven" in text
    assert info.slices == 21


def test_without_position_tags_slices_follow_their_instance_numbers(tmp_path):
    series = ct_series(12, rows=16, columns=16)
    for ds in series:
        del ds.ImagePositionPatient
    study = open_study(zipped(series, tmp_path))
    assert "ordered by Instance Number" in " ".join(study.warnings)
    assert [marker(study, i) for i in range(12)] == list(range(12))
    assert study.slice_position(0) is None and study.metadata["ordered_by"] == "instance number or file order"


# -- refused uploads -------------------------------------------------------------------------------------


def test_a_zip_without_dicom_is_refused_and_says_what_it_holds(tmp_path):
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr(f"{PATIENT}/notes.txt", "hello")
        bundle.writestr("scan.png", b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(NotAnImage) as info:
        open_study(path)
    assert str(info.value) == (
        "photos.zip: the zip holds no DICOM images (2 other file(s)). It holds PNG/JPEG/TIFF pictures: upload a "
        "picture itself."
    )


def test_two_patients_in_one_zip_are_refused_without_saying_who(tmp_path):
    first = ct_series(5, rows=16, columns=16, patient_id="PID-99317")
    second = ct_series(5, rows=16, columns=16, patient_id="PID-12345", patient_name="Other^Person")
    with pytest.raises(MixedStudies) as info:
        open_study(zipped(first + second, tmp_path))
    message = str(info.value)
    assert message.startswith("odd.zip holds images of 2 different patients (their Patient IDs differ).")
    assert "PID" not in message and "Other" not in message


def test_two_studies_of_one_patient_are_refused_too(tmp_path):
    first = ct_series(5, rows=16, columns=16)
    second = ct_series(5, rows=16, columns=16)  # same Patient ID, another Study Instance UID
    with pytest.raises(MixedStudies, match="holds 2 different studies"):
        open_study(zipped(first + second, tmp_path))


@pytest.mark.parametrize(
    ("name", "link", "message"),
    [
        (f"../{PATIENT}/IM1", False, "entry 1 of 1 points outside its folder"),
        (f"/{PATIENT}/IM1", False, "entry 1 of 1 has an absolute path"),
        (f"{PATIENT}/link", True, "entry 1 of 1 is a symbolic link"),
    ],
    ids=["traversal", "absolute", "symlink"],
)
def test_unsafe_zips_are_refused_naming_the_entry_by_number(tmp_path, name, link, message):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as bundle:
        info = zipfile.ZipInfo(name)
        if link:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        bundle.writestr(info, to_bytes(ct_series(1, rows=8, columns=8)[0]))
    with pytest.raises(UnsafeArchive) as raised:
        open_study(path)
    assert message in str(raised.value) and PATIENT not in str(raised.value)


def test_a_damaged_zip_is_refused_in_our_words(tmp_path):
    path = tmp_path / "cut.zip"
    path.write_bytes(zipped(ct_series(3, rows=8, columns=8), tmp_path).read_bytes()[:-40])
    with pytest.raises(UnsafeArchive, match=r"cut.zip: not a readable ZIP file \(BadZipFile\)"):
        open_study(path)


# -- privacy ---------------------------------------------------------------------------------------------


def test_no_name_from_inside_the_upload_reaches_labels_metadata_messages_logs_or_the_cli(
    study_zip, tmp_path, caplog, capsys
):
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        listing = list_series(study_zip)
        study = listing.open(0)
        study.render(10, "lung")
        try:
            open_study(study_zip)
        except SeveralSeries as exc:
            several = str(exc)
    assert cli_main(["series", str(study_zip)]) == 0
    assert cli_main(["info", str(study_zip), "--series", "0"]) == 0
    out = tmp_path / "slice.png"
    assert cli_main(["png", str(study_zip), str(out), "--series", "0", "--slice", "5", "--window", "lung"]) == 0
    texts = [json.dumps([s.as_dict() for s in listing]), *listing.warnings, json.dumps(study.metadata), repr(study)]
    texts += [*study.warnings, several, caplog.text, *(str(w.message) for w in caught), *capsys.readouterr()]
    for text in texts:
        for token in PHI_TOKENS:
            assert token.lower() not in text.lower(), (token, text[:200])
    assert not any(token.encode() in out.read_bytes() for token in PHI_TOKENS)


@pytest.mark.parametrize(
    ("description", "shown"),
    [
        ("AX T2 FLAIR", True),
        ("HEAD 5mm STD", True),
        ("CHEST W/O CONTRAST 1.25mm B30f", True),
        ("Sag T1 post gad", True),
        ("DOE JANE head", False),
        ("Smith protocol", False),
        ("2024 03 15", False),
        ("20240315", False),
        ("MRN 12345", False),
        ("HEAD^BRAIN", False),
    ],
)
def test_series_descriptions_are_shown_only_when_every_word_is_an_imaging_term(description, shown):
    assert (safe_description(description) == description) is shown


# -- several slices in one prompt ------------------------------------------------------------------------


def test_evenly_spaced_slices_are_the_centres_of_equal_runs():
    assert evenly_spaced(120, 4) == [15, 45, 75, 105]
    assert evenly_spaced(3, 8) == [0, 1, 2] and evenly_spaced(119, 1) == [59]
    with pytest.raises(ImagingError):
        evenly_spaced(10, 0)


def test_slice_pictures_are_model_pictures_with_their_indices_and_token_cost(study_zip):
    study = open_study(study_zip, series=0)
    chosen = slice_pictures(study, 4, window="lung")
    assert chosen.indices == (14, 44, 74, 104)
    for index, picture in zip(chosen.indices, chosen.pictures, strict=True):
        assert np.array_equal(np.asarray(picture), np.asarray(model_picture(study, index, "lung")))
    assert chosen.pictures[0].size == (56, 56) and chosen.tokens_per_picture == (4, 4, 4, 4)
    assert (chosen.image_tokens, chosen.prompt_tokens) == (16, 24)
    big = slice_pictures(open_study(to_bytes(ct_series(1, rows=512, columns=512)[0])), 8)
    assert big.indices == (0,) and big.image_tokens == image_tokens((504, 504)) == 324
    assert "trained and evaluated on single 2-D images" in MULTI_SLICE_NOTE


def test_a_token_budget_shrinks_every_picture():
    study = open_study([to_bytes(ds) for ds in ct_series(16, rows=512, columns=512)])
    full = slice_pictures(study, 8)
    capped = slice_pictures(study, 8, token_budget=512)
    assert full.image_tokens == 8 * 324 and capped.image_tokens <= 512 and capped.pictures[0].size == (224, 224)
    assert budget_bounds(capped.bounds, 1, 10**6).max_pixels == capped.bounds.max_pixels


def test_bytes_of_a_zip_open_like_its_path(study_zip):
    data = study_zip.read_bytes()
    assert [s.label for s in list_series(data, name="upload.zip")] == [s.label for s in list_series(study_zip)]
    assert list_series(io.BytesIO(data).getvalue()).name == "<uploaded file>"


def test_the_token_count_is_what_the_processor_makes_of_the_pictures(tiny_model_dir):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    study = open_study([to_bytes(ds) for ds in ct_series(12, rows=200, columns=150)])
    chosen = slice_pictures(study, 3, bounds=PixelBounds(3136, 12544))
    messages = [{"role": "user", "content": [{"type": "image"}] * 3 + [{"type": "text", "text": "Which?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = processor(text=[text], images=list(chosen.pictures), return_tensors="pt")["input_ids"][0].tolist()
    vocabulary = processor.tokenizer.convert_tokens_to_ids
    pad, start, end = (vocabulary(t) for t in ("<|image_pad|>", "<|vision_start|>", "<|vision_end|>"))
    assert ids.count(pad) == chosen.image_tokens == 36
    assert ids.count(pad) + ids.count(start) + ids.count(end) == chosen.prompt_tokens == 42


def test_an_opened_zip_or_volume_keeps_working_after_its_upload_file_is_deleted(tmp_path):
    """The app deletes uploads once read: a study opened from a path must not need the path any more."""
    from train.imaging.synthetic import write_nifti

    archive = write_series(ct_series(12, rows=16, columns=16), tmp_path / "upload.zip")
    volume = write_nifti(tmp_path / "upload.nii", np.arange(16 * 16 * 6, dtype=np.int16).reshape(16, 16, 6))
    squeezed = write_nifti(tmp_path / "upload.nii.gz", np.ones((16, 16, 6), np.int16))
    studies = [open_study(archive), open_study(volume), open_study(squeezed)]
    for path in (archive, volume, squeezed):
        path.unlink()
    assert [marker(studies[0], i) for i in (0, 11)] == [0, 11]
    assert studies[1].render(0).size == (16, 16) and studies[2].render(5).size == (16, 16)
