"""Amounts in words for receipts, English and Bangla, in lakh and crore."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sonjog.core.words import _BN_0_99, _EN_TENS, _EN_UNITS, amount_in_words


@pytest.mark.parametrize(
    ("amount", "english", "bangla"),
    [
        ("0", "Taka Zero Only", "শূন্য টাকা মাত্র"),
        ("1.05", "Taka One and Five Paisa Only", "এক টাকা পাঁচ পয়সা মাত্র"),
        ("100", "Taka One Hundred Only", "একশত টাকা মাত্র"),
        (
            "12500.50",
            "Taka Twelve Thousand Five Hundred and Fifty Paisa Only",
            "বারো হাজার পাঁচশত টাকা পঞ্চাশ পয়সা মাত্র",
        ),
        ("150000", "Taka One Lakh Fifty Thousand Only", "এক লক্ষ পঞ্চাশ হাজার টাকা মাত্র"),
        (
            "123456789.99",
            "Taka Twelve Crore Thirty-Four Lakh Fifty-Six Thousand Seven Hundred Eighty-Nine"
            " and Ninety-Nine Paisa Only",
            "বারো কোটি চৌত্রিশ লক্ষ ছাপ্পান্ন হাজার সাতশত উননব্বই টাকা নিরানব্বই পয়সা মাত্র",
        ),
    ],
)
def test_known_amounts(amount, english, bangla):
    assert amount_in_words(Decimal(amount)) == english
    assert amount_in_words(Decimal(amount), "bn") == bangla


_EN_VALUES = {word: value for value, word in enumerate(_EN_UNITS)} | {
    word: 10 * tens for tens, word in enumerate(_EN_TENS) if tens >= 2
}
_EN_SCALES = {"Thousand": 1_000, "Lakh": 100_000, "Crore": 10_000_000}
_BN_VALUES = {word: value for value, word in enumerate(_BN_0_99)}
_BN_SCALES = {"হাজার": 1_000, "লক্ষ": 100_000, "কোটি": 10_000_000}


def _read_whole(words: list[str], values: dict[str, int], scales: dict[str, int], hundred: str) -> int:
    """An independent reader: scales apply to everything counted since the last larger scale."""
    total, group = 0, 0
    for word in words:
        if word in scales:
            scale = scales[word]
            # "x Thousand Crore": a smaller scale before a larger one multiplies into it.
            if total and total < scale:
                group, total = total + group, 0
            total += group * scale
            group = 0
        elif word == hundred:
            group *= 100
        elif word.endswith(hundred) and hundred == "শত":
            group += values[word[: -len(hundred)]] * 100
        else:
            for part in word.split("-"):
                group += values[part]
    return total + group


@given(st.decimals(min_value=0, max_value=Decimal("999999999999.99"), places=2))
def test_words_read_back_to_the_amount(amount):
    english = amount_in_words(amount).removeprefix("Taka ").removesuffix(" Only")
    taka, _and, paisa = english.partition(" and ")
    value = Decimal(_read_whole(taka.split(), _EN_VALUES, _EN_SCALES, "Hundred"))
    if paisa:
        value += Decimal(_read_whole(paisa.removesuffix(" Paisa").split(), _EN_VALUES, {}, "Hundred")) / 100
    assert value == amount

    bangla = amount_in_words(amount, "bn").removesuffix(" মাত্র")
    taka_bn, _sep, paisa_bn = bangla.partition(" টাকা")
    value = Decimal(_read_whole(taka_bn.split(), _BN_VALUES, _BN_SCALES, "শত"))
    if paisa_bn.strip():
        value += Decimal(_BN_VALUES[paisa_bn.strip().removesuffix(" পয়সা")]) / 100
    assert value == amount


def test_a_negative_amount_is_refused():
    with pytest.raises(ValueError, match="never negative"):
        amount_in_words(Decimal("-1"))
