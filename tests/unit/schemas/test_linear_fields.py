"""The field types that read client input (every callback parameter) cost time linear in it,
whatever it holds; so does werkzeug's parsing of the Content-Type header the view reads."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from marshmallow import ValidationError
from werkzeug.http import parse_options_header

from schemas.fields import CaseInsensitiveEnum, Sid, snake_case
from tests.support.cputime import LINEAR_BOUND, growth

_N = 8000  # with 8 times as much, 64,000 characters: about a whole 64 KiB body


def _refused(field: Sid | CaseInsensitiveEnum) -> Callable[[str], None]:
    def load(value: str) -> None:
        with pytest.raises(ValidationError):
            field.deserialize(value)

    return load


@pytest.mark.parametrize(
    "make",
    [lambda n: "RT" + "a" * n, lambda n: "RT" + "0" * 31 + "x" * n, lambda n: "R" * n],
)
def test_sid_refuses_in_linear_time(make: Callable[[int], str]) -> None:
    assert growth(_refused(Sid("RT")), make, _N) < LINEAR_BOUND


def test_case_insensitive_enum_refuses_in_linear_time() -> None:
    field = CaseInsensitiveEnum(["VP8", "H264", "OPUS"])
    assert growth(_refused(field), lambda n: "vp8" * n, _N) < LINEAR_BOUND


@pytest.mark.parametrize(
    "make", [lambda n: "aB" * n, lambda n: "A" * n, lambda n: "AAb" * n, lambda n: "-_" * n]
)
def test_snake_case_of_any_parameter_name_is_linear(make: Callable[[int], str]) -> None:
    uncached = snake_case.__wrapped__  # the cache would make every repeat free
    assert growth(uncached, make, _N) < LINEAR_BOUND


@pytest.mark.parametrize(
    "make",
    [
        lambda n: "application/x-www-form-urlencoded" + ";" * n,
        lambda n: "a/b; " + "x=" * n,
        lambda n: 'a/b; x="' + "\\" * n,
        lambda n: "a/b; " + "x*=utf-8''" * n,
        lambda n: "a/b" + "; x=%" * n,
    ],
)
def test_werkzeug_parses_a_hostile_content_type_in_linear_time(
    make: Callable[[int], str],
) -> None:
    assert growth(parse_options_header, make, 1000) < LINEAR_BOUND
