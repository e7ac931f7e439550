"""Windows: an empty data interval is refused."""

from __future__ import annotations

import pytest

from ingestion.errors import ConfigError
from ingestion.window import Window


@pytest.mark.parametrize(
    ("start", "end"),
    [
        pytest.param("2026-10-30T00:00:00", "2026-10-30T00:00:00", id="zero-length"),
        pytest.param("2026-10-31T00:00:00", "2026-10-30T00:00:00", id="end-before-start"),
        pytest.param("2026-10-30T02:00:00+02:00", "2026-10-30T00:00:00Z", id="same-instant-two-zones"),
    ],
)
def test_empty_window_is_refused(start: str, end: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Window.parse(start, end)

    assert "is empty" in str(raised.value)
    assert "data interval 2026-10-" in str(raised.value)
