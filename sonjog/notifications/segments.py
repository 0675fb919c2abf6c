"""How many SMS a text costs: GSM-7 or UCS-2, and how it splits into concatenated parts.

GSM 03.38 packs the basic alphabet into 7-bit septets; the extension table (€, [, ], {, }, ^, ~, |, \\
and form feed) costs an escape septet plus the character, so two. One SMS carries 160 septets; a
concatenated part loses 7 septets to its user data header, so 153. A text with any character outside
both tables (every Bangla letter, every emoji) goes as UCS-2: 70 UTF-16 code units alone, 67 per part.

Parts are packed greedily, the way handsets and SMSCs split: an escape pair never straddles two parts
and neither does a UTF-16 surrogate pair (an emoji outside the BMP), so a part may end one unit short
and a text may need one part more than units/153 suggests. Operators are billed per part, so the count
must match what the SMSC will actually send.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

GSM7_SINGLE = 160
GSM7_PART = 153
UCS2_SINGLE = 70
UCS2_PART = 67

# The default alphabet (3GPP TS 23.038 table 6.2.1) without the escape code itself.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each of these is sent as ESC + code, two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

_NOT_GSM7 = re.compile("[^" + re.escape("".join(sorted(GSM7_BASIC | GSM7_EXTENSION))) + "]")
_EXTENSION = re.compile("[" + re.escape("".join(sorted(GSM7_EXTENSION))) + "]")


@dataclass(frozen=True)
class SegmentCount:
    encoding: str
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int

    def as_dict(self) -> dict[str, str | int]:
        return {"encoding": self.encoding, "units": self.units, "segments": self.segments}


def is_gsm7(text: str) -> bool:
    return _NOT_GSM7.search(text) is None


def _char_units(char: str, encoding: str) -> int:
    if encoding == GSM7:
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def text_units(text: str, encoding: str) -> int:
    if encoding == GSM7:
        return len(text) + len(_EXTENSION.findall(text))
    # Astral characters are a surrogate pair in UTF-16; everything else one unit.
    return len(text.encode("utf-16-le")) // 2


def split_parts(text: str) -> list[str]:
    """The parts the text travels in, packed greedily without splitting an escape or surrogate pair."""
    encoding = GSM7 if is_gsm7(text) else UCS2
    single, part_size = (GSM7_SINGLE, GSM7_PART) if encoding == GSM7 else (UCS2_SINGLE, UCS2_PART)
    if text_units(text, encoding) <= single:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for char in text:
        size = _char_units(char, encoding)
        if used + size > part_size:
            parts.append("".join(current))
            current, used = [], 0
        current.append(char)
        used += size
    if current:
        parts.append("".join(current))
    return parts


def count_segments(text: str) -> SegmentCount:
    """Encoding, units and parts for `text`. An empty text still goes as one (empty) SMS."""
    encoding = GSM7 if is_gsm7(text) else UCS2
    units = text_units(text, encoding)
    single, part_size = (GSM7_SINGLE, GSM7_PART) if encoding == GSM7 else (UCS2_SINGLE, UCS2_PART)
    if units <= single:
        return SegmentCount(encoding, units, 1)
    # Only a double-unit character can push a part boundary; without one the arithmetic is exact.
    has_pairs = _EXTENSION.search(text) is not None if encoding == GSM7 else units != len(text)
    segments = len(split_parts(text)) if has_pairs else math.ceil(units / part_size)
    return SegmentCount(encoding, units, segments)
