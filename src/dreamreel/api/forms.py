"""``multipart/form-data`` bodies, read strictly into the nested shape a JSON body has.

The ``openai`` SDK sends its creating requests as multipart forms, nested fields bracket-encoded
(``input_reference[image_url]``, ``video[id]``) and files as parts with a filename. Reading them here (on
the already size-capped body, ``api/deps.read_body``) rather than with a form library keeps the parse
exact and bounded: the body is split on its boundary once, every part must carry a
``Content-Disposition: form-data; name=...``, a name may appear once, at most :data:`MAX_PARTS` parts, and
a text part must be UTF-8. Whatever is wrong is an :class:`InvalidRequest` naming the body or the field,
never a server error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import collapse_rfc2231_value
from typing import Any

from dreamreel.core.errors import InvalidRequest

MAX_PARTS = 32
MAX_NAME_CHARS = 100
_NAME = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]+\])*)$")


@dataclass(frozen=True)
class FilePart:
    """A form part sent as a file (it has a ``filename``)."""

    filename: str
    content_type: str
    data: bytes


def _body_error(message: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid request: body: {message}", field="body")


def boundary_of(content_type: str) -> str:
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= 200:
        raise _body_error("a multipart/form-data body needs a boundary (1 to 200 characters)")
    return boundary


def parse_multipart(body: bytes, content_type: str) -> list[tuple[str, str | FilePart]]:
    """The form's ``(name, value)`` pairs in order: text parts as ``str``, file parts as :class:`FilePart`."""
    delimiter = b"--" + boundary_of(content_type).encode("latin-1")
    chunks = body.split(b"\r\n" + delimiter)
    if not chunks[0].startswith(delimiter):  # the first delimiter may open the body (no preamble)
        raise _body_error("the multipart body does not start with its boundary")
    chunks[0] = chunks[0][len(delimiter):]
    if len(chunks) < 2 or not chunks[-1].startswith(b"--"):
        raise _body_error("the multipart body does not end with its closing boundary")
    parts = chunks[:-1]
    if len(parts) > MAX_PARTS:
        raise _body_error(f"more than {MAX_PARTS} form fields")
    fields: list[tuple[str, str | FilePart]] = []
    for part in parts:
        head, separator, data = part.partition(b"\r\n\r\n")
        head = head.lstrip(b" \t")  # transport padding after the boundary
        if not separator or not head.startswith(b"\r\n"):
            raise _body_error("a form part has no header block")
        headers = BytesHeaderParser().parsebytes(head[2:] + b"\r\n\r\n")
        if headers.get_content_disposition() != "form-data":
            raise _body_error("every form part needs Content-Disposition: form-data")
        name = headers.get_param("name", header="content-disposition")
        name = collapse_rfc2231_value(name) if name is not None else None
        if not name or len(name) > MAX_NAME_CHARS:
            raise _body_error(f"every form part needs a name of 1 to {MAX_NAME_CHARS} characters")
        filename = headers.get_filename()
        if filename is not None:
            fields.append((name, FilePart(filename, headers.get_content_type(), data)))
            continue
        try:
            fields.append((name, data.decode("utf-8")))
        except UnicodeDecodeError:
            raise InvalidRequest(f"Invalid request: {name}: not UTF-8 text", field=name) from None
    return fields


def nest(fields: list[tuple[str, str | FilePart]]) -> dict[str, Any]:
    """``[("video[id]", "x"), ("prompt", "p")]`` -> ``{"video": {"id": "x"}, "prompt": "p"}``; a name twice, or
    one both a value and a group, is refused naming it."""
    nested: dict[str, Any] = {}
    for name, value in fields:
        match = _NAME.match(name)
        if match is None:
            raise InvalidRequest(f"Invalid request: {name}: not a field name (use name or name[key])", field=name)
        path = [match.group(1), *re.findall(r"\[([^\[\]]+)\]", match.group(2))]
        node = nested
        for key in path[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise InvalidRequest(f"Invalid request: {name}: given both as a value and as fields", field=name)
        if path[-1] in node:
            raise InvalidRequest(f"Invalid request: {name}: given more than once", field=".".join(path))
        node[path[-1]] = value
    return nested
