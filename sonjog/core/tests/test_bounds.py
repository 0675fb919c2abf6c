"""The validation layer (sonjog.core.bounds) and the outbound-address guard (sonjog.core.outbound)."""

from __future__ import annotations

import datetime as dt
import socket
from decimal import Decimal

import pytest
from django import forms
from hypothesis import given
from hypothesis import settings as hypothesis_settings

from sonjog.catalog.models import Package
from sonjog.core import bounds
from sonjog.core.outbound import OutboundRefused, OutboundUnresolved, check_outbound_url
from sonjog.core.tests.hostile import hostile_text
from sonjog.customers.models import Subscriber


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1500", Decimal("1500.00")),
        ("1,500.5", Decimal("1500.50")),
        (" 999999999999.99 ", Decimal("999999999999.99")),
        ("-0", Decimal("0.00")),
        ("১০০", Decimal("100.00")),  # Bangla digits are digits
    ],
)
def test_amounts_in_plain_notation_are_read(text, expected):
    value = bounds.parse_amount(text)
    assert value == expected and str(value) == str(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1e20", "not an amount"),
        ("1E2", "not an amount"),
        ("NaN", "not an amount"),
        ("Infinity", "not an amount"),
        ("0x10", "not an amount"),
        ("100000000000000", "too large"),
        ("1000000000000", "too large"),
        ("-1000000000000", "too large"),
        ("9" * 5000, "too large"),
        ("1.001", "two decimal places"),
        ("\x00", "not an amount"),
    ],
)
def test_amounts_outside_numeric_14_2_are_refused(text, message):
    with pytest.raises(bounds.OutOfBounds, match=message):
        bounds.parse_amount(text)


@hypothesis_settings(max_examples=60, deadline=None)
@given(text=hostile_text)
def test_an_amount_is_either_refused_or_fits_the_column(text):
    try:
        value = bounds.parse_amount(text)
    except bounds.OutOfBounds:
        return
    assert value.is_finite() and abs(value) < Decimal("1000000000000") and value == value.quantize(Decimal("0.01"))
    assert not value.is_signed() or value != 0


def test_integers_are_bounded_by_their_column():
    assert bounds.integer_range("PositiveIntegerField") == (0, 2147483647)
    assert bounds.parse_int("2147483647", minimum=0, maximum=2147483647) == 2147483647
    for text in ("2147483648", "9" * 20, "9" * 5000, "1e3", "NaN", "-0x1", "²", ""):
        with pytest.raises(bounds.OutOfBounds):
            bounds.parse_int(text, minimum=0, maximum=2147483647)
    field = bounds.column_field(Package, "download_kbps", min_value=1)
    assert isinstance(field, forms.IntegerField)
    assert field.clean("2147483647") == 2147483647
    with pytest.raises(forms.ValidationError):
        field.clean("99999999999")


def test_text_refuses_control_characters_and_keeps_the_column_length():
    field = bounds.column_field(Subscriber, "name")
    assert isinstance(field, forms.CharField) and field.max_length == 200
    assert field.clean("  Nasima Akter  ") == "Nasima Akter"
    assert field.clean("নাসিমা\u200cআক্তার") == "নাসিমা\u200cআক্তার"  # ZWNJ is part of Bangla writing
    for text in ("a\x00b", "a\tb", "a\nb", "a\x7fb", "\u202eevil", "a\u2028b", "x" * 201):
        with pytest.raises(forms.ValidationError):
            field.clean(text)
    textarea = bounds.TextField(max_length=50, multiline=True)
    assert textarea.clean("line one\r\nline\ttwo") == "line one\r\nline\ttwo"
    with pytest.raises(forms.ValidationError):
        textarea.clean("NUL\x00")


def test_dates_outside_the_sanity_range_are_refused():
    field = bounds.DateField(required=False)
    assert field.clean("2027-06-15") == dt.date(2027, 6, 15)
    for text in ("9999-12-31", "1999-12-31", "2101-01-01", "0000-00-00"):
        with pytest.raises(forms.ValidationError):
            field.clean(text)
    assert bounds.check_date(bounds.DATE_CEILING) == dt.date(2100, 12, 31)


@pytest.mark.parametrize(
    ("raw", "page"),
    [("", 1), (None, 1), ("2", 2), ("7", 7), ("8", 7), ("0", 1), ("-3", 1), ("9" * 20, 7), ("1e3", 1), ("²", 1)],
)
def test_page_numbers_are_clamped(raw, page):
    assert bounds.page_number(raw, last_page=7) == page


def test_json_options_must_suit_jsonb():
    assert bounds.parse_json_object('{"path": "/send", "n": 1.5}') == {"path": "/send", "n": 1.5}
    for text in ('{"a": "\\u0000"}', '{"a": NaN}', '{"a": 1e999}', "[1]", "[" * 5000 + "]" * 5000, '{"a\\t": 1}'):
        with pytest.raises(bounds.OutOfBounds):
            bounds.parse_json_object(text)


def _resolving_to(monkeypatch, *addresses):
    def fake(host, port, *args, **kwargs):
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake)


PRIVATE_ADDRESSES = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "::1",
    "fe80::1",
    "fc00::1",
    "::ffff:127.0.0.1",
    "2002:7f00:1::",
]


@pytest.mark.parametrize("address", PRIVATE_ADDRESSES)
def test_urls_leading_to_private_addresses_are_refused(settings, monkeypatch, address):
    settings.SONJOG_ALLOW_PRIVATE_OUTBOUND = False
    _resolving_to(monkeypatch, address)
    with pytest.raises(OutboundRefused, match="public addresses"):
        check_outbound_url("https://gateway.example.net/api")


def test_every_resolved_address_is_checked(settings, monkeypatch):
    settings.SONJOG_ALLOW_PRIVATE_OUTBOUND = False
    _resolving_to(monkeypatch, "93.184.216.34")
    check_outbound_url("https://gateway.example.net/api")
    _resolving_to(monkeypatch, "93.184.216.34", "10.0.0.7")
    with pytest.raises(OutboundRefused):
        check_outbound_url("https://gateway.example.net/api")


def test_literal_addresses_schemes_and_the_setting(settings):
    settings.SONJOG_ALLOW_PRIVATE_OUTBOUND = False
    check_outbound_url("http://93.184.216.34:8080/send")
    for url in ("http://127.0.0.1:9/", "http://[::1]/", "http://2130706433/", "http://0177.0.0.1/"):
        with pytest.raises(OutboundRefused):
            check_outbound_url(url)
    for url in ("ftp://93.184.216.34/", "file:///etc/passwd", "http:///path", "http://[::1/"):
        with pytest.raises(OutboundRefused):
            check_outbound_url(url)
    with pytest.raises(OutboundUnresolved):
        check_outbound_url("http://gateway.invalid/")
    settings.SONJOG_ALLOW_PRIVATE_OUTBOUND = True
    check_outbound_url("http://127.0.0.1:9/")
    with pytest.raises(OutboundRefused):
        check_outbound_url("ftp://127.0.0.1/")
