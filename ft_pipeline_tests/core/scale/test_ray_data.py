"""What the Ray engine sends from the driver and what it stages on disk: every line once, in order,
whichever side of IN_MEMORY_BYTES the input falls (no Ray needed to check it)."""
import itertools

import pytest

from ft_pipeline.core.scale.ray_data import _head, _lines


@pytest.mark.parametrize("limit, complete", [(10_000, True), (60, False), (0, False)])
def test_head_then_rest_is_every_line_in_order(limit, complete):
    records = [{"id": f"r{i}", "text": "x" * i} for i in range(12)]
    lines = _lines(records)
    head, whole = _head(lines, limit)
    assert whole is complete
    assert head + list(lines) == list(_lines(records))
    if not complete:
        assert sum(len(line) + 1 for line in head) > limit >= sum(len(line) + 1 for line in head[:-1])


def test_lines_hold_no_raw_line_break():
    """read_text splits staged lines on line breaks: a record's own U+2028 or newline stays escaped."""
    (line,) = itertools.islice(_lines([{"text": "a\nb\u2028c\u0085d"}]), 1)
    assert "\n" not in line and "\u2028" not in line and "\u0085" not in line
