"""JSON written in pieces, converted as it is written, is the document ``to_data`` gives."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kcheckpoint.render.jsonout import dump_pieces, dumps, lazy_data, to_data


@dataclass(frozen=True)
class Record:
    name: str
    value: Any
    hidden: Any = field(default=None, metadata={"json": False})


scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.binary(max_size=8)
keys = st.text(max_size=4) | st.integers(-5, 5)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(keys, inner, max_size=4)
        | st.builds(Record, st.text(max_size=4), inner, inner)
    ),
    max_leaves=20,
)


def _reference(obj: Any) -> str:
    return json.dumps(to_data(obj), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


@given(values)
def test_pieces_are_the_document_to_data_gives(obj: Any) -> None:
    assert "".join(dump_pieces(obj)) == _reference(obj) == dumps(obj)


def test_a_long_list_is_written_in_batches_with_its_items_converted_on_the_way() -> None:
    records = [Record(f"r{i}", b"\x00\xff", hidden=object()) for i in range(10_000)]
    pieces = list(dump_pieces({"records": records}))
    assert len(pieces) > 1  # written as it is encoded, not as one string
    assert "".join(pieces) == _reference({"records": records})
    assert lazy_data(records[0]) == {"name": "r0", "value": "00ff"}  # the hidden field left out
