"""first_answer: the order in which chained collateral sources are asked, and which error explains a miss."""

import pytest

from attestation.collateral.chain import first_answer
from attestation.errors import CollateralError


class Source:
    def __init__(self, name: str, has: bool) -> None:
        self.name, self.has, self.asked = name, has, 0

    def item(self) -> str:
        self.asked += 1
        if not self.has:
            raise CollateralError(f"item at {self.name}", "not provided")
        return self.name


def test_the_first_source_that_has_the_item_answers_and_later_ones_are_not_asked():
    sources = [Source("bundle", False), Source("cache", True), Source("online", True)]
    assert first_answer(sources, Source.item, "collateral") == "cache"
    assert [s.asked for s in sources] == [1, 1, 0]


def test_when_no_source_has_it_the_last_sources_error_is_raised():
    with pytest.raises(CollateralError, match="item at online: not provided"):
        first_answer([Source("bundle", False), Source("online", False)], Source.item, "collateral")


def test_no_source_configured_names_what_was_wanted():
    with pytest.raises(CollateralError, match="NVIDIA collateral: no source configured"):
        first_answer([], Source.item, "NVIDIA collateral")


def test_other_errors_are_not_swallowed():
    def broken(_source):
        raise ValueError("bug")
    with pytest.raises(ValueError):
        first_answer([Source("bundle", True)], broken, "collateral")
