"""Studies in the Ask tab: a ZIP of DICOM series, a NIfTI volume, several files dropped at once, N slices.

Through the app's HTTP API with the scripted text generator (the documented test seam); the picture, the
series grouping and ordering, the export and the privacy of names are the app's and the kit's own.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from medr1_app_testkit import (
    DOWNLOADS,
    OPEN_FRAME,
    OPEN_SERIES,
    OPEN_SLICES,
    OPEN_STATUS,
    OPEN_VIEW,
    RESULT,
    WELL_FORMED,
    ScriptedStream,
    ask_args,
    launch,
)

from train.imaging import evenly_spaced
from train.imaging.synthetic import ct_series, write_nifti, write_series

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

SECRET = "Quinella^Zyxwvut"  # a patient name in a folder name inside the ZIP: must never come back


@pytest.fixture(scope="module")
def app(tiny_model_dir):
    from medr1_app.app import AppConfig, build_app

    stream = ScriptedStream([WELL_FORMED])
    demo = build_app(AppConfig(model=str(tiny_model_dir), runs_dir=None), stream_fn=stream)
    url = launch(demo)
    yield stream, url
    demo.close()


@pytest.fixture(scope="module")
def two_series_zip(tmp_path_factory) -> Path:
    """A 40-slice CT series and a 12-slice one with another number, shuffled under a name-bearing folder."""
    folder = tmp_path_factory.mktemp("series")
    study = "1.2.826.0.1.3680043.8.498.1"
    slices = list(ct_series(40, series_number=2, study_uid=study))
    slices += list(ct_series(12, series_number=5, description="SCOUT", study_uid=study))
    names = [f"{SECRET}/STUDY/IM{i:04d}" for i in range(len(slices))]
    return write_series(slices, folder / "export.zip", names=names)


def test_a_zip_of_two_series_offers_both_and_opens_on_the_middle_slice(app, two_series_zip):
    _, url = app
    opened = Client(url, verbose=False).predict([handle_file(str(two_series_zip))], api_name="/open")
    assert "holds 2 series" in opened[OPEN_STATUS]
    series = opened[OPEN_SERIES]
    assert series["visible"] is True and len(series["choices"]) == 2
    labels = [label for label, _ in series["choices"]]
    assert any("40 slices" in label for label in labels) and any("12 slices" in label for label in labels)
    frame = opened[OPEN_FRAME]
    assert frame["label"] == "Slice" and frame["maximum"] == len_of(labels[series["value"]]) - 1
    assert frame["value"] == len_of(labels[series["value"]]) // 2
    assert opened[OPEN_SLICES]["visible"] is True and opened[OPEN_VIEW]["visible"] is False
    assert SECRET not in json.dumps(opened, default=str) and "IM00" not in json.dumps(opened, default=str)


def len_of(label: str) -> int:
    return int(label.split(" slices")[0].split("·")[-1])


def test_asking_about_a_slice_names_its_index_and_never_a_file(app, two_series_zip):
    _, url = app
    client = Client(url, verbose=False)
    client.predict([handle_file(str(two_series_zip))], api_name="/open")
    final = client.predict(*ask_args(frame=7), api_name="/ask")
    record = final[RESULT]
    assert record["image"]["slice"] == 7 and record["image"]["slices"] in (40, 12)
    assert "Series" in record["image"]["series"] and "slices" in record["image"]["series"]
    for path in final[DOWNLOADS]:
        text = Path(path).read_bytes()
        assert SECRET.encode() not in text and b"IM00" not in text and b"export.zip" not in text


def test_n_evenly_spaced_slices_go_to_the_model_as_one_prompt(app, two_series_zip):
    stream, url = app
    client = Client(url, verbose=False)
    opened = client.predict([handle_file(str(two_series_zip))], api_name="/open")
    slices = len_of(opened[OPEN_SERIES]["choices"][opened[OPEN_SERIES]["value"]][0])
    final = client.predict(*ask_args(slices=4), api_name="/ask")
    call = stream.calls[-1]
    assert len(call["sizes"]) == 4, "four pictures in one prompt"
    record = final[RESULT]
    assert record["image"]["slices_asked"] == evenly_spaced(slices, 4) and record["image"]["image_tokens"] > 0
    names = sorted(Path(p).name for p in final[DOWNLOADS])
    asked = evenly_spaced(slices, 4)
    assert names == sorted(
        ["image.png", "answer.json", "answer.md"]
        + [f"slice-{i:04d}.png" for i in asked]
        + [f"attention-map-{i:04d}.png" for i in asked]  # the evidence: one map per slice asked
    )
    assert [m["grid"] for m in record["evidence"]["attention_map"]] == [
        m["grid"] for m in record["evidence"]["attention_map"][:1]
    ] * 4


def test_several_dicom_files_dropped_at_once_are_one_series(app, tmp_path):
    _, url = app
    folder = write_series(list(ct_series(10)), tmp_path / "dropped")
    files = sorted(folder.iterdir())
    opened = Client(url, verbose=False).predict([handle_file(str(f)) for f in files], api_name="/open")
    assert "Loaded 10 files." in opened[OPEN_STATUS] and opened[OPEN_SERIES]["visible"] is False
    assert opened[OPEN_FRAME]["maximum"] == 9 and opened[OPEN_FRAME]["label"] == "Slice"


def test_a_nifti_volume_opens_with_its_views(app, tmp_path):
    _, url = app
    volume = np.stack([np.full((24, 24), 10.0 * z) for z in range(20)], axis=-1).astype(np.float32)
    path = write_nifti(tmp_path / "brain.nii.gz", volume, zooms=(1.0, 1.0, 1.0))
    opened = Client(url, verbose=False).predict([handle_file(str(path))], api_name="/open")
    assert (
        "Loaded a NIfTI volume." in opened[OPEN_STATUS]
        and "brain" not in opened[OPEN_STATUS]
        and opened[OPEN_FRAME]["maximum"] == 19
    )
    view = opened[OPEN_VIEW]
    assert view["visible"] is True and {"axial", "coronal", "sagittal"} <= {c[1] for c in view["choices"]}
