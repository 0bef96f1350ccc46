"""Which installed package decodes which DICOM transfer syntax, and what to install when none does.

pydicom 3 picks a decoding plugin per transfer syntax at run time (``pydicom.pixels.get_decoder``).
This module turns "no plugin available" into an :class:`UnsupportedCodec` that names the syntax in
words and the package to install, so a clinician sees "compressed with JPEG Lossless; install
python-gdcm" instead of a stack trace. The licence of every package we recommend is listed here and in
the README (Licences of the DICOM codecs): medr1 is Apache-2.0, so the recommended route never requires a GPL package
(pylibjpeg-libjpeg, GPL-3.0, also decodes the JPEG family but is left to the user's choice).
"""

from __future__ import annotations

from typing import NamedTuple

from pydicom.pixels import get_decoder
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from .errors import UnsupportedCodec


class Package(NamedTuple):
    """A pip-installable package that provides a pydicom decoding plugin."""

    pip: str
    licence: str


# pydicom plugin name -> the package(s) that provide it. "pylibjpeg" depends on the syntax: its
# JPEG-family backend (pylibjpeg-libjpeg) is GPL-3.0, its JPEG 2000 backend (pylibjpeg-openjpeg) MIT.
PACKAGES: dict[str, Package] = {
    "pydicom": Package("pydicom", "MIT (built-in decoder, uses numpy: BSD-3-Clause)"),
    "pillow": Package("pillow", "MIT-CMU (HPND); wheels bundle libjpeg-turbo (IJG/BSD-3) and OpenJPEG (BSD-2)"),
    "gdcm": Package(
        "python-gdcm",
        "Apache-2.0 wrapper around GDCM (BSD-3-Clause), bundling CharLS (BSD-3), OpenJPEG (BSD-2), "
        "IJG libjpeg (IJG licence), zlib, expat (MIT)",
    ),
    "pyjpegls": Package("pyjpegls", "MIT, bundling CharLS (BSD-3-Clause)"),
    "pylibjpeg-openjpeg": Package("pylibjpeg pylibjpeg-openjpeg", "MIT, bundling OpenJPEG (BSD-2-Clause)"),
    "pylibjpeg-libjpeg": Package("pylibjpeg pylibjpeg-libjpeg", "GPL-3.0 (not a medr1 dependency)"),
    "pylibjpeg-rle": Package("pylibjpeg pylibjpeg-rle", "MIT"),
}


class Codec(NamedTuple):
    """A transfer syntax as a clinician would name it, and the package we recommend for it."""

    label: str
    recommend: str  # key into PACKAGES


CODECS: dict[str, Codec] = {
    ImplicitVRLittleEndian: Codec("uncompressed (implicit VR)", "pydicom"),
    ExplicitVRLittleEndian: Codec("uncompressed", "pydicom"),
    ExplicitVRBigEndian: Codec("uncompressed (big endian)", "pydicom"),
    DeflatedExplicitVRLittleEndian: Codec("uncompressed, zip-deflated", "pydicom"),
    JPEGBaseline8Bit: Codec("JPEG baseline (lossy, 8-bit)", "pillow"),
    JPEGExtended12Bit: Codec("JPEG extended (lossy, 8 or 12-bit)", "pillow"),
    JPEGLossless: Codec("JPEG Lossless (process 14)", "gdcm"),
    JPEGLosslessSV1: Codec("JPEG Lossless (process 14, first-order prediction)", "gdcm"),
    JPEGLSLossless: Codec("JPEG-LS (lossless)", "pyjpegls"),
    JPEGLSNearLossless: Codec("JPEG-LS (near-lossless)", "pyjpegls"),
    JPEG2000Lossless: Codec("JPEG 2000 (lossless)", "pylibjpeg-openjpeg"),
    JPEG2000: Codec("JPEG 2000", "pylibjpeg-openjpeg"),
    HTJ2KLossless: Codec("High-Throughput JPEG 2000 (lossless)", "pylibjpeg-openjpeg"),
    HTJ2KLosslessRPCL: Codec("High-Throughput JPEG 2000 (lossless, RPCL)", "pylibjpeg-openjpeg"),
    HTJ2K: Codec("High-Throughput JPEG 2000", "pylibjpeg-openjpeg"),
    RLELossless: Codec("RLE lossless", "pydicom"),
}

# Order in which plugins are tried; the first that decodes wins. Measured here: pillow decodes baseline
# JPEG straight to RGB (11 ms vs 16 ms plus a 5 ms YBR conversion through gdcm for a 320x240 frame).
# gdcm is a last resort, used only when no other plugin for the syntax is installed (in practice:
# JPEG Lossless): it is the slower path, writes codec errors straight to stderr, and keeping one
# decoder per syntax keeps behaviour on damaged files predictable (the fuzz tests cover that set).
_ORDER: dict[str, tuple[str, ...]] = {
    JPEGBaseline8Bit: ("pillow", "pylibjpeg"),
    JPEGExtended12Bit: ("pillow", "pylibjpeg"),
    JPEGLossless: ("pylibjpeg",),
    JPEGLosslessSV1: ("pylibjpeg",),
    JPEGLSLossless: ("pyjpegls", "pylibjpeg"),
    JPEGLSNearLossless: ("pyjpegls", "pylibjpeg"),
    JPEG2000Lossless: ("pylibjpeg", "pillow"),
    JPEG2000: ("pylibjpeg", "pillow"),
    RLELossless: ("pydicom", "pylibjpeg"),
}
_LAST_RESORT = "gdcm"

_RE_EXPORT = "or ask for the study to be exported uncompressed (Explicit VR Little Endian)"


def describe(transfer_syntax: str) -> str:
    """A human name for a transfer syntax (technical, never patient data)."""
    uid = UID(transfer_syntax)
    if uid in CODECS:
        return CODECS[uid].label
    return uid.name if uid.is_valid and uid.name != uid else "an unrecognised transfer syntax"


def _not_decodable_hint(uid: UID) -> str:
    """Why pydicom has no decoder at all for ``uid``, in words."""
    name = uid.name
    if "MPEG" in name or "HEVC" in name:
        return (
            f"it is a video ({name}); medr1 reads still images only. Export the frames of interest as "
            "images (or as an uncompressed multi-frame DICOM) from the viewer or PACS"
        )
    if "JPIP" in name:
        return "the pixels are not in the file but on a JPIP server; export the full image from PACS"
    if "SMPTE" in name:
        return "it is a broadcast video stream; export the frames of interest as images"
    return f"no decoder for {describe(uid)} exists in pydicom 3; export the image uncompressed or as PNG"


def require_decoder(transfer_syntax: str, name: str) -> None:
    """Raise :class:`UnsupportedCodec` unless an installed plugin can decode ``transfer_syntax``."""
    uid = UID(transfer_syntax)
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        raise UnsupportedCodec(f"{name}: cannot show this image: {_not_decodable_hint(uid)}.") from None
    if decoder.is_available:
        return
    codec = CODECS.get(uid, Codec(describe(uid), "gdcm"))
    package = PACKAGES[codec.recommend]
    raise UnsupportedCodec(
        f"{name}: the image is compressed with {codec.label} and no installed decoder reads it. "
        f"Install {package.pip} (`pip install {package.pip}`, licence {package.licence}), {_RE_EXPORT}."
    )


def unsupported_variant(transfer_syntax: str, error: Exception, name: str) -> UnsupportedCodec | None:
    """Recognise a plugin refusing a *variant* of a syntax it otherwise decodes (e.g. 12-bit JPEG).

    pydicom lists pillow and gdcm as JPEG Extended decoders, yet its plugins for both refuse 12-bit
    samples; only pylibjpeg-libjpeg (GPL-3.0) decodes them in pydicom 3. That is a missing codec, not
    a damaged file, and the message must say so.
    """
    text = str(error)
    if "does not support" not in text:
        return None
    if "12-bit precision" in text:
        package = PACKAGES["pylibjpeg-libjpeg"]
        return UnsupportedCodec(
            f"{name}: the image is compressed with 12-bit JPEG, which only {package.pip} decodes "
            f"(`pip install {package.pip}`, licence {package.licence}). Otherwise ask for it to be exported "
            "uncompressed or with JPEG Lossless."
        )
    reason = next((line.strip() for line in text.splitlines() if "does not support" in line), text)[:200]
    return UnsupportedCodec(
        f"{name}: the installed decoders cannot read this {describe(transfer_syntax)} image ({reason}); {_RE_EXPORT}."
    )


def available_plugins(transfer_syntax: str) -> list[str]:
    """The pydicom plugins that can decode ``transfer_syntax`` right now, in pydicom's order."""
    uid = UID(transfer_syntax)
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        return []
    if not uid.is_compressed:
        return ["pydicom"] if decoder.is_available else []
    return list(decoder.available_plugins)


def plugin_order(transfer_syntax: str) -> list[str]:
    """Installed plugins to try for ``transfer_syntax``, in order ([""] = pydicom's default for native data).

    gdcm is included only when nothing else can decode the syntax.
    """
    uid = UID(transfer_syntax)
    available = available_plugins(uid)
    if not uid.is_compressed:
        return [""]
    preferred = [p for p in _ORDER.get(uid, ()) if p in available]
    others = [p for p in available if p not in preferred and p != _LAST_RESORT]
    ordered = preferred + others
    return ordered or ([_LAST_RESORT] if _LAST_RESORT in available else [])


def codec_table() -> list[tuple[str, str, list[str]]]:
    """(UID, label, available plugins) for every syntax we know: the licence table's live half."""
    return [(str(uid), codec.label, available_plugins(uid)) for uid, codec in CODECS.items()]
