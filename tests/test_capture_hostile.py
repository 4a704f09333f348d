"""The capture service against hostile requests: Range per RFC 9110 and an access log that never
shows query values and never goes to stdout (huge timeouts: test_capture_api.py)."""

from __future__ import annotations

import hashlib
import json
import logging
import logging.config
from pathlib import Path
from typing import Any

import pytest

from kcheckpoint.capture.accesslog import RedactQuery, log_config, redact_target
from kcheckpoint.capture.ranges import single_range

from .capture.app_fixtures import OPS, Capture, bearer
from .capture.fake_cri import PAYLOAD


def _capture_one(cap: Capture) -> str:
    response: Any = cap.post("default/web/app")
    assert response.status_code == 200, response.text
    return Path(json.loads(response.text)["items"][0]).name


@pytest.mark.parametrize(
    "header",
    ["bytes=10-5", "items=0-10", "bytes=abc", "bytes=", "bytes=0-1,5-9", "bytes=0-1, 3-"],
)
def test_an_invalid_or_multiple_range_is_ignored(cap: Capture, header: str) -> None:
    name = _capture_one(cap)
    response = cap.client.get(f"/checkpoints/{name}", headers={**bearer(OPS), "Range": header})
    assert response.status_code == 200
    assert response.content == PAYLOAD
    assert "multipart" not in response.headers["content-type"]
    assert response.headers["x-checkpoint-sha256"] == hashlib.sha256(PAYLOAD).hexdigest()


@pytest.mark.parametrize(
    ("header", "part"),
    [("bytes=5-9", slice(5, 10)), ("BYTES = 7-", slice(7, None)), ("bytes=-4", slice(-4, None))],
)
def test_one_valid_range_is_206(cap: Capture, header: str, part: slice) -> None:
    name = _capture_one(cap)
    response = cap.client.get(f"/checkpoints/{name}", headers={**bearer(OPS), "Range": header})
    assert (response.status_code, response.content) == (206, PAYLOAD[part])


def test_single_range_parser() -> None:
    assert single_range("bytes=0-0") == "bytes=0-0"
    assert single_range("bytes=010-") == "bytes=10-"
    assert single_range("bytes=-0") == "bytes=-0"
    assert single_range("bytes=2-1") is None
    assert single_range("bytes=1-2,4-5") is None
    assert single_range(None) is None


def test_query_values_are_redacted() -> None:
    assert (
        redact_target("/checkpoints?token=s3cret&x=1")
        == "/checkpoints?token=<redacted>&x=<redacted>"
    )
    assert redact_target("/checkpoint/a/b/c") == "/checkpoint/a/b/c"
    assert "s3cret" not in redact_target("/x?s3cret")


def test_the_access_log_goes_to_stderr_without_query_values(
    capfd: pytest.CaptureFixture[str],
) -> None:
    config = log_config("info")
    logging.config.dictConfig(config)
    try:
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5555",
            "POST",
            "/checkpoint/ns/pod/c?token=ghp_secretvalue&timeout=30",
            "1.1",
            200,
        )
        out, err = capfd.readouterr()
        assert out == ""
        assert "/checkpoint/ns/pod/c?token=<redacted>&timeout=<redacted>" in err
        assert "ghp_secretvalue" not in err
    finally:
        for name in ("uvicorn", "uvicorn.access", "uvicorn.error"):
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.filters = [f for f in logger.filters if not isinstance(f, RedactQuery)]
            logger.propagate = True
