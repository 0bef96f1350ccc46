"""Attention over image tokens laid back onto the picture: one cell per merged visual token.

Qwen2-VL and Qwen2.5-VL cut the model's input picture into 14 px patches and merge 2×2 of them into
one language-model token, so token ``k`` of an image with ``image_grid_thw = (1, h, w)`` covers the
28×28 px cell at row ``k // (w/2)``, column ``k % (w/2)`` of the picture the processor received
(``train.imaging.model_picture`` gives exactly that picture). A map is that grid of weights; overlays
are drawn cell by cell at the model input's pixel size, so a weight is never smeared onto a
neighbouring cell.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

# Colour ramp of the overlay: yellow (weak) to red (strongest). No white or black end, so the strongest
# cells stay visible on bright bone or a white lesion as on dark air; opacity also follows the weight.
_RAMP = np.array([[255, 230, 40], [255, 140, 0], [235, 40, 0], [200, 0, 40]], dtype=np.float32)


DEFAULT_OPACITY = 0.5
"""The overlay's opacity unless the user moves the slider: the strongest cell half covers the picture."""


def image_token_spans(input_ids: torch.Tensor, image_token_id: int) -> list[list[int]]:
    """Positions of each image's tokens in one sequence; images are separated by non-image tokens."""
    positions = (input_ids == image_token_id).nonzero().flatten().tolist()
    spans: list[list[int]] = []
    for position in positions:
        if spans and position == spans[-1][-1] + 1:
            spans[-1].append(position)
        else:
            spans.append([position])
    return spans


def token_grid(grid_thw: Sequence[int], merge: int = 2) -> tuple[int, int]:
    """Rows and columns of language-model tokens for one image (frames of a video are not supported)."""
    t, h, w = (int(v) for v in grid_thw)
    if t != 1:
        raise ValueError(f"Evidence maps are for still pictures; this input has {t} frames per image.")
    return h // merge, w // merge


def _covered(cells: int, start: float, stop: float) -> np.ndarray:
    """Fraction of each of ``cells`` equal cells along [0, 1] that [start, stop] covers."""
    edges = np.arange(cells + 1) / cells
    return np.clip((np.minimum(edges[1:], stop) - np.maximum(edges[:-1], start)) * cells, 0, 1)


def _ramp(values: np.ndarray) -> np.ndarray:
    scaled = np.clip(values, 0, 1) * (len(_RAMP) - 1)
    low = np.floor(scaled).astype(int).clip(0, len(_RAMP) - 2)
    frac = (scaled - low)[..., None]
    return _RAMP[low] * (1 - frac) + _RAMP[low + 1] * frac


@dataclass(frozen=True)
class EvidenceMap:
    """Weights over one picture's token grid, summing to 1 (the share of the answer position's attention
    to the image that each 28×28 px cell received)."""

    weights: np.ndarray
    """rows × columns, float, sums to 1."""
    cell: int = 28
    """Pixels of the model's input per cell side."""
    method: str = "attention"
    layers: tuple[int, ...] = ()
    image_share: float | None = None
    """Share of the answer position's whole attention that went to this picture's tokens."""

    @property
    def grid(self) -> tuple[int, int]:
        return int(self.weights.shape[0]), int(self.weights.shape[1])

    def heat(self, size: tuple[int, int]) -> Image.Image:
        """The map as an RGBA heat image of ``size`` (width, height); cells stay sharp-edged."""
        peak = float(self.weights.max()) or 1.0
        rgb = _ramp(self.weights / peak).astype(np.uint8)
        alpha = (np.clip(self.weights / peak, 0, 1) * 255).astype(np.uint8)
        tile = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
        return tile.resize(size, Image.Resampling.NEAREST)

    def overlay(self, picture: Image.Image, opacity: float = DEFAULT_OPACITY) -> Image.Image:
        """The picture with the map blended on top; ``opacity`` 0 shows the picture alone.

        Weak cells stay nearly transparent (alpha follows the weight), so the anatomy under cells the
        model hardly looked at stays readable.
        """
        base = picture.convert("RGBA")
        heat = self.heat(base.size)
        alpha = np.asarray(heat.getchannel("A"), dtype=np.float32) * float(np.clip(opacity, 0, 1))
        heat.putalpha(Image.fromarray(alpha.astype(np.uint8), "L"))
        return Image.alpha_composite(base, heat).convert("RGB")

    def png_bytes(self, picture: Image.Image | None = None, opacity: float = DEFAULT_OPACITY) -> bytes:
        """PNG of the overlay (or of the heat map alone at the model input's size, without a picture)."""
        image = (
            self.overlay(picture, opacity)
            if picture is not None
            else self.heat((self.grid[1] * self.cell, self.grid[0] * self.cell))
        )
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    def box_ratio(self, box: Sequence[float]) -> float:
        """Mass inside ``box`` (x0, y0, x1, y1 as fractions of the picture) over the box's share of it.

        1.0 is what a uniform map scores; each cell counts by the fraction of it the box covers.
        """
        rows, cols = self.grid
        x0, y0, x1, y1 = (float(v) for v in box)
        share = max(0.0, x1 - x0) * max(0.0, y1 - y0)
        if share <= 0:
            raise ValueError("The box is empty.")
        inside = float((self.weights * np.outer(_covered(rows, y0, y1), _covered(cols, x0, x1))).sum())
        return inside / share

    def to_json(self) -> dict[str, Any]:
        """For the answer record: the grid, the weights and the heat map (RGBA, at the model input's size,
        to lay over the picture the record's ``image.png`` holds) as a base64 PNG."""
        return {
            "method": self.method,
            "grid": list(self.grid),
            "cell_px": self.cell,
            "layers": list(self.layers),
            "image_share": None if self.image_share is None else round(self.image_share, 6),
            "weights": np.round(self.weights, 6).tolist(),
            "png_base64": base64.b64encode(self.png_bytes()).decode("ascii"),
        }


def map_from_rows(
    layer_rows: dict[int, torch.Tensor],
    layers: Sequence[int],
    span: Sequence[int],
    grid: tuple[int, int],
    cell: int,
    method: str = "attention",
) -> EvidenceMap:
    """Average the recorded rows (heads × queries × keys) over heads, queries and ``layers``, keep one
    image's tokens, and renormalise them into a map."""
    stacked = torch.stack([layer_rows[i] for i in layers])  # layers × heads × queries × keys
    mean = stacked.mean(dim=(0, 1, 2))
    image = mean[list(span)]
    total = float(image.sum())
    weights = (image / total if total > 0 else torch.full_like(image, 1 / len(span))).numpy()
    rows, cols = grid
    if weights.size != rows * cols:
        raise ValueError(f"{weights.size} image tokens do not fill a {rows}×{cols} grid.")
    return EvidenceMap(weights.reshape(rows, cols).astype(np.float64), cell, method, tuple(layers), total)
