"""``api/forms.py``: multipart bodies as httpx (the ``openai`` SDK's transport) writes them, and broken ones."""

from __future__ import annotations

import os

import httpx
import pytest

from dreamreel.api.forms import FilePart, nest, parse_multipart
from dreamreel.core.errors import InvalidRequest


def encoded(data: dict, files: dict | None = None) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://x/", data=data, files=files)
    return request.read(), request.headers["content-type"]


def test_fields_and_files_come_back_exactly() -> None:
    payload = os.urandom(4096) + b"\r\n\r\n--not-the-boundary\r\n"  # binary, with CRLFs and dashes
    body, content_type = encoded({"prompt": "ünïcode ✓", "video[id]": "abc"}, {"input_reference": ("a.png", payload,
                                                                                                  "image/png")})
    fields = parse_multipart(body, content_type)
    assert fields[:2] == [("prompt", "ünïcode ✓"), ("video[id]", "abc")]
    assert fields[2] == ("input_reference", FilePart("a.png", "image/png", payload))
    assert nest(fields[:2]) == {"prompt": "ünïcode ✓", "video": {"id": "abc"}}


@pytest.mark.parametrize("body,content_type", [
    (b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--b--\r\n", "multipart/form-data"),  # no boundary
    (b"garbage", "multipart/form-data; boundary=b"),
    (b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx", "multipart/form-data; boundary=b"),  # unclosed
    (b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n", "multipart/form-data; boundary=b"),  # no disposition
    (b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n", "multipart/form-data; boundary=b"),  # no name
    (b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\xff\r\n--b--\r\n", "multipart/form-data; boundary=b"),
    (b"--b" + b"\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--b" * 40 + b"--\r\n",
     "multipart/form-data; boundary=b"),  # too many parts
])
def test_broken_bodies_are_invalid_requests(body: bytes, content_type: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_multipart(body, content_type)


@pytest.mark.parametrize("fields", [
    [("a", "1"), ("a", "2")],
    [("a", "1"), ("a[b]", "2")],
    [("a[b]", "1"), ("a", "2")],
    [("a[", "1")],
    [("[b]", "1")],
])
def test_names_given_twice_or_malformed_are_refused(fields: list) -> None:
    with pytest.raises(InvalidRequest):
        nest(fields)
