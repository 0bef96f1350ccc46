"""Read text attributes without letting pydicom convert them.

pydicom validates a value when it first converts it and, if the value breaks its VR's rules, logs and
warns *with the value in the message* ("Invalid value for VR CS: 'DOE^JOHN'"). A patient name typed
into BodyPartExamined, or any garbage in a damaged header, would then reach the application's logs.
So every text attribute this package looks at is read from the raw bytes here, parsed by our own
rules, and never handed to pydicom's converter. Binary attributes (US/SS: Rows, Bits Allocated...)
carry only numbers and go through pydicom as usual.
"""

from __future__ import annotations

import math
import re

from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


def strings(ds: Dataset, keyword: str) -> list[str] | None:
    """The values of a text element, split on backslash and stripped; None when absent or unreadable."""
    tag = tag_for_keyword(keyword)
    if tag is None or tag not in ds:
        return None
    try:
        element = ds.get_item(tag)  # raw (unconverted) unless someone already converted it
    except Exception:
        return None
    if element is None:
        return None
    if isinstance(element, RawDataElement):
        if element.value is None:
            return None
        text = bytes(element.value).decode("latin-1")
    else:
        value = element.value
        if value is None:
            return None
        items = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
        text = "\\".join(str(item) for item in items)
    return [part.strip(" \x00") for part in text.split("\\")]


def first(ds: Dataset, keyword: str) -> str:
    """The first value of a text element, upper-cased ('' when absent)."""
    values = strings(ds, keyword)
    return values[0].upper() if values else ""


def numbers(ds: Dataset, keyword: str) -> list[float]:
    """The values of a DS/IS element as floats (NaN for any that do not parse); [] when absent."""
    out = []
    for part in strings(ds, keyword) or []:
        try:
            out.append(float(part))
        except ValueError:
            out.append(math.nan)
    return out


def uid(ds: Dataset, keyword: str) -> str | None:
    """A UI element's value if it is a well-formed UID, else None."""
    values = strings(ds, keyword)
    value = values[0] if values else ""
    return value if 0 < len(value) <= 64 and _UID.fullmatch(value) else None
