"""gateway.text.one_line: what every notice and reply does to text from outside."""

from __future__ import annotations

import pytest

from gateway.text import one_line


@pytest.mark.parametrize(("raw", "limit", "want"), [
    ("見積書\r\n  の送付\t", 300, "見積書 の送付"),        # line breaks and runs of space
    ("a\x00b\x1bc", 300, "a?b?c"),                      # controls
    ("evil\u202eexe.txt", 300, "evil?exe.txt"),          # bidi override
    ("x" * 500, 400, "x" * 400),
    ("", 10, ""),
])
def test_one_line(raw: str, limit: int, want: str) -> None:
    assert one_line(raw, limit) == want
