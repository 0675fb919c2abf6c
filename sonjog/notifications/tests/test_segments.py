"""Segment counting: a table of known cases, properties over generated text, and the sms_segments CLI."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from sonjog.notifications.segments import GSM7, GSM7_BASIC, GSM7_EXTENSION, UCS2, count_segments, split_parts

REPO = Path(__file__).resolve().parents[3]
EMOJI = "😀"


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", GSM7, 0, 1),
        ("Your bill is 500 BDT", GSM7, 20, 1),
        ("€", GSM7, 2, 1),
        ("Pay 10€ [now] {ok} ^~|\\", GSM7, 32, 1),
        ("\f", GSM7, 2, 1),
        ("Ç@£$¥èéùìòØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¡ÄÖÑÜ§¿äöñüà", GSM7, 41, 1),
        ("ç", UCS2, 1, 1),  # only the capital Ç is in GSM-7
        ("ú", UCS2, 1, 1),
        ("a" * 160, GSM7, 160, 1),
        ("a" * 161, GSM7, 161, 2),
        ("a" * 306, GSM7, 306, 2),
        ("a" * 307, GSM7, 307, 3),
        ("€" * 80, GSM7, 160, 1),
        ("€" * 81, GSM7, 162, 2),
        # The escape pair may not straddle parts: 152 + [€ ...] leaves part one a septet short.
        ("a" * 152 + "€" + "a" * 152, GSM7, 306, 3),
        ("ক্ষ", UCS2, 3, 1),  # ক + hasanta + ষ: three code units
        ("জ্ঞ", UCS2, 3, 1),
        ("জ্ঞান", UCS2, 5, 1),
        ("Bill ৳500", UCS2, 9, 1),  # one taka sign makes the whole text UCS-2
        ("আ" * 70, UCS2, 70, 1),
        ("আ" * 71, UCS2, 71, 2),
        ("আ" * 134, UCS2, 134, 2),
        ("আ" * 135, UCS2, 135, 3),
        (EMOJI, UCS2, 2, 1),
        (EMOJI * 35, UCS2, 70, 1),
        (EMOJI * 36, UCS2, 72, 2),
        # A surrogate pair may not straddle parts either.
        ("আ" * 66 + EMOJI + "আ" * 66, UCS2, 134, 3),
        ("Hi " + EMOJI, UCS2, 5, 1),
    ],
)
def test_segment_table(text: str, encoding: str, units: int, segments: int) -> None:
    count = count_segments(text)
    assert (count.encoding, count.units, count.segments) == (encoding, units, segments)
    assert len(split_parts(text)) == segments


def formula(units: int, single: int, part: int) -> int:
    return 1 if units <= single else math.ceil(units / part)


GSM_BASIC_TEXT = st.text(alphabet=sorted(GSM7_BASIC), max_size=700)
GSM_TEXT = st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=700)
ANY_TEXT = st.text(max_size=400)


@settings(max_examples=200, deadline=None)
@given(GSM_BASIC_TEXT)
def test_basic_gsm_text_follows_the_formula(text: str) -> None:
    count = count_segments(text)
    assert (count.encoding, count.units) == (GSM7, len(text))
    assert count.segments == formula(len(text), 160, 153)


@settings(max_examples=200, deadline=None)
@given(GSM_TEXT)
def test_gsm_parts_never_split_an_escape(text: str) -> None:
    count = count_segments(text)
    septets = len(text) + sum(text.count(char) for char in GSM7_EXTENSION)
    assert (count.encoding, count.units) == (GSM7, septets)
    parts = split_parts(text)
    assert "".join(parts) == text and len(parts) == count.segments
    assert count.segments >= formula(septets, 160, 153)
    if count.segments > 1:
        assert all(len(p) + sum(p.count(c) for c in GSM7_EXTENSION) <= 153 for p in parts)


@settings(max_examples=200, deadline=None)
@given(ANY_TEXT.filter(lambda text: any(char not in GSM7_BASIC | GSM7_EXTENSION for char in text)))
def test_other_text_is_ucs2_in_utf16_units(text: str) -> None:
    count = count_segments(text)
    units = len(text.encode("utf-16-le")) // 2
    assert (count.encoding, count.units) == (UCS2, units)
    parts = split_parts(text)
    assert "".join(parts) == text and len(parts) == count.segments
    assert count.segments >= formula(units, 70, 67)
    if count.segments > 1:
        # Parts are whole code points, so no part ends in half a surrogate pair, and each fits.
        assert all(len(p.encode("utf-16-le")) // 2 <= 67 for p in parts)
        assert count.segments <= formula(units, 70, 66)


def test_cli_json_in_process() -> None:
    out = io.StringIO()
    call_command("sms_segments", "জ্ঞান " + "€", "--json", stdout=out)
    assert out.getvalue().strip() == '{"encoding": "UCS-2", "units": 7, "segments": 1}'
    out = io.StringIO()
    call_command("sms_segments", "a" * 161, stdout=out)
    assert out.getvalue().strip() == "GSM-7: 161 septets, 2 segments"


def test_cli_json_in_a_real_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sonjog.cli", "sms_segments", "Pay 500€ now " + EMOJI, "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"encoding": "UCS-2", "units": 15, "segments": 1}
    assert list(json.loads(done.stdout)) == ["encoding", "units", "segments"]
