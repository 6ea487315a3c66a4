"""Parsing untrusted XML feeds (GDACS RSS, tsunami Atom and CAP) safely, in one place."""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from feeds import FeedFormatError


def parse_xml(payload: bytes | str, what: str) -> Element:
    """The root of an untrusted XML document, parsed by defusedxml with DTDs refused.

    Raises :class:`FeedFormatError` for anything that is not well-formed XML (an unknown or
    multi-byte declared encoding included), and for documents that defusedxml refuses (entity
    expansion, external references, DTDs).
    """
    if isinstance(payload, str):
        payload = payload.lstrip("\ufeff")
    elif isinstance(payload, (bytes, bytearray)):
        payload = bytes(payload)
    else:
        raise TypeError(f"payload must be bytes or str, got {type(payload).__name__}")
    try:
        return SafeET.fromstring(payload, forbid_dtd=True)
    except defusedxml.DefusedXmlException as exc:
        raise FeedFormatError(f"{what}: XML refused ({type(exc).__name__}): {exc}") from exc
    except ParseError as exc:
        raise FeedFormatError(f"{what}: not well-formed XML: {exc}") from exc
    except (LookupError, ValueError) as exc:  # encoding="TTF-8", encoding="utf-32"
        raise FeedFormatError(f"{what}: XML in an unusable encoding: {exc}") from exc
