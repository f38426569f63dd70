"""Quantities parse exactly like resource.Quantity; malformed ones are errors, never zero."""

from fractions import Fraction

import pytest

from app.wire.quantity import QuantityError, format_amount, parse_quantity, quantity_to_int


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", Fraction(1, 10)),
        ("1.5", Fraction(3, 2)),
        ("2e3", Fraction(2000)),
        ("128974848", Fraction(128974848)),
        ("129e6", Fraction(129000000)),
        ("129M", Fraction(129000000)),
        ("123Mi", Fraction(128974848)),
        ("1Ki", Fraction(1024)),
        ("1Ei", Fraction(2**60)),
        ("1E", Fraction(10**18)),
        ("1E3", Fraction(1000)),
        ("0.5Gi", Fraction(2**29)),
        (".5", Fraction(1, 2)),
        ("+2", Fraction(2)),
        ("10n", Fraction(1, 10**8)),
        ("3u", Fraction(3, 10**6)),
        ("1e-3", Fraction(1, 1000)),
    ],
)
def test_parses_every_kubernetes_suffix_exactly(text: str, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text", ["lots", "", "1.2.3", "1Ki2", "--1", "e3", "1 Gi", " 1", "1g", "Mi", "1ki"]
)
def test_rejects_malformed_quantities(text: str) -> None:
    with pytest.raises(QuantityError, match="not a valid Kubernetes quantity"):
        parse_quantity(text)


def test_cpu_is_millicores_rounded_up_and_other_resources_units_rounded_up() -> None:
    assert quantity_to_int("cpu", "100m") == 100
    assert quantity_to_int("cpu", "0.1m") == 1  # MilliValue rounds up
    assert quantity_to_int("cpu", 2) == 2000  # YAML integers are quantities too
    assert quantity_to_int("memory", "1.5") == 2
    assert quantity_to_int("memory", "1Gi") == 2**30


def test_negative_amounts_are_rejected() -> None:
    with pytest.raises(QuantityError, match="negative"):
        quantity_to_int("cpu", "-1")


def test_huge_amounts_are_clamped_to_fit_int64_columns() -> None:
    assert quantity_to_int("cpu", "1Ei") == 2**62


def test_format_amount_is_readable() -> None:
    assert format_amount("cpu", 1500) == "1500m"
    assert format_amount("cpu", 2000) == "2"
    assert format_amount("memory", 512 * 2**20) == "512Mi"
    assert format_amount("nvidia.com/gpu", 3) == "3"
