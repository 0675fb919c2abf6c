"""Amounts in words for money receipts, in English and Bangla, counted the way Bangladesh counts:
hundred, thousand, lakh (100,000) and crore (10,000,000), as a Bangladeshi money receipt states them
("Taka Twelve Thousand Five Hundred and Fifty Paisa Only" / "বারো হাজার পাঁচশত টাকা পঞ্চাশ পয়সা মাত্র")."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

_EN_UNITS = [
    "Zero",
    "One",
    "Two",
    "Three",
    "Four",
    "Five",
    "Six",
    "Seven",
    "Eight",
    "Nine",
    "Ten",
    "Eleven",
    "Twelve",
    "Thirteen",
    "Fourteen",
    "Fifteen",
    "Sixteen",
    "Seventeen",
    "Eighteen",
    "Nineteen",
]
_EN_TENS = ["_", "_", "Twenty", "Thirty", "Forty", "Fifty", "Sixty", "Seventy", "Eighty", "Ninety"]

# Bangla has its own word for every number up to ninety-nine.
_BN_0_99 = [
    "শূন্য",
    "এক",
    "দুই",
    "তিন",
    "চার",
    "পাঁচ",
    "ছয়",
    "সাত",
    "আট",
    "নয়",
    "দশ",
    "এগারো",
    "বারো",
    "তেরো",
    "চৌদ্দ",
    "পনেরো",
    "ষোলো",
    "সতেরো",
    "আঠারো",
    "উনিশ",
    "বিশ",
    "একুশ",
    "বাইশ",
    "তেইশ",
    "চব্বিশ",
    "পঁচিশ",
    "ছাব্বিশ",
    "সাতাশ",
    "আটাশ",
    "উনত্রিশ",
    "ত্রিশ",
    "একত্রিশ",
    "বত্রিশ",
    "তেত্রিশ",
    "চৌত্রিশ",
    "পঁয়ত্রিশ",
    "ছত্রিশ",
    "সাঁইত্রিশ",
    "আটত্রিশ",
    "উনচল্লিশ",
    "চল্লিশ",
    "একচল্লিশ",
    "বিয়াল্লিশ",
    "তেতাল্লিশ",
    "চুয়াল্লিশ",
    "পঁয়তাল্লিশ",
    "ছেচল্লিশ",
    "সাতচল্লিশ",
    "আটচল্লিশ",
    "উনপঞ্চাশ",
    "পঞ্চাশ",
    "একান্ন",
    "বায়ান্ন",
    "তিপ্পান্ন",
    "চুয়ান্ন",
    "পঞ্চান্ন",
    "ছাপ্পান্ন",
    "সাতান্ন",
    "আটান্ন",
    "উনষাট",
    "ষাট",
    "একষট্টি",
    "বাষট্টি",
    "তেষট্টি",
    "চৌষট্টি",
    "পঁয়ষট্টি",
    "ছেষট্টি",
    "সাতষট্টি",
    "আটষট্টি",
    "উনসত্তর",
    "সত্তর",
    "একাত্তর",
    "বাহাত্তর",
    "তিয়াত্তর",
    "চুয়াত্তর",
    "পঁচাত্তর",
    "ছিয়াত্তর",
    "সাতাত্তর",
    "আটাত্তর",
    "উনআশি",
    "আশি",
    "একাশি",
    "বিরাশি",
    "তিরাশি",
    "চুরাশি",
    "পঁচাশি",
    "ছিয়াশি",
    "সাতাশি",
    "আটাশি",
    "উননব্বই",
    "নব্বই",
    "একানব্বই",
    "বিরানব্বই",
    "তিরানব্বই",
    "চুরানব্বই",
    "পঁচানব্বই",
    "ছিয়ানব্বই",
    "সাতানব্বই",
    "আটানব্বই",
    "নিরানব্বই",
]
assert len(_BN_0_99) == 100

# (size, English, Bangla), largest first; what is left above a crore is counted in crores again.
_SCALES = ((10_000_000, "Crore", "কোটি"), (100_000, "Lakh", "লক্ষ"), (1_000, "Thousand", "হাজার"))


def _en_below_thousand(number: int) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(number, 100)
    if hundreds:
        words += [_EN_UNITS[hundreds], "Hundred"]
    if rest:
        if rest < 20:
            words.append(_EN_UNITS[rest])
        else:
            tens, units = divmod(rest, 10)
            words.append(_EN_TENS[tens] + (f"-{_EN_UNITS[units]}" if units else ""))
    return words


def _bn_below_thousand(number: int) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(number, 100)
    if hundreds:
        words.append(_BN_0_99[hundreds] + "শত")
    if rest:
        words.append(_BN_0_99[rest])
    return words


def _whole(number: int, language: str) -> list[str]:
    if number == 0:
        return [_BN_0_99[0] if language == "bn" else _EN_UNITS[0]]
    below = _bn_below_thousand if language == "bn" else _en_below_thousand
    words: list[str] = []
    for size, english, bangla in _SCALES:
        count, number = divmod(number, size)
        if count:
            # Crores of crores are counted in crores again (the Indian system's way).
            words += _whole(count, language) if count >= 1000 else below(count)
            words.append(bangla if language == "bn" else english)
    words += below(number)
    return words


def amount_in_words(amount: Decimal, language: str = "en") -> str:
    """`amount` (a non-negative money amount) in words, with its paisa, for a receipt."""
    if amount < 0:
        raise ValueError("amounts in words are for money received, never negative")
    rounded = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    taka = int(rounded)
    paisa = int((rounded - taka) * 100)
    if language == "bn":
        text = " ".join(_whole(taka, "bn")) + " টাকা"
        if paisa:
            text += " " + _BN_0_99[paisa] + " পয়সা"
        return text + " মাত্র"
    text = "Taka " + " ".join(_whole(taka, "en"))
    if paisa:
        text += " and " + " ".join(_whole(paisa, "en")) + " Paisa"
    return text + " Only"
