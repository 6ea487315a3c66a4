"""Standalone printable HTML documents: one inline style sheet, and a policy that allows it
and nothing else.

The call sheet (:mod:`layers.outreach_export`) and the drill after-action report
(:mod:`layers.aar`) are files a coordinator opens, prints and keeps: they must render the same
offline, years later, from a USB stick. So they load nothing, run nothing and submit nothing;
their only resource is their own ``<style>`` block, allowed by its SHA-256 hash.

* :func:`style_policy` — that Content-Security-Policy for a given style sheet (the same text
  is sent as a response header and kept in the document's ``<meta>``).
* :func:`document` — the complete document around a body: doctype, language, charset, the
  policy, no referrer, the style.

Pure: the standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable


def style_policy(style: str) -> str:
    """The Content-Security-Policy of a document whose only resource is ``style`` (its one
    inline ``<style>`` block, allowed by hash): no scripts, images, fonts, connections,
    frames, base URL or form targets."""
    if not isinstance(style, str) or not style.strip():
        raise ValueError("style must be the document's non-empty style sheet text")
    digest = base64.b64encode(hashlib.sha256(style.encode("utf-8")).digest()).decode("ascii")
    return (f"default-src 'none'; style-src 'sha256-{digest}'; base-uri 'none'; "
            "form-action 'none'")


def document(title: str, style: str, body: Iterable[str], *, lang: str = "en") -> str:
    """A complete HTML document: ``title`` (escaped here), ``style`` as its one style block
    under :func:`style_policy`, and the ``body`` lines as they are (already escaped)."""
    policy = style_policy(style)
    head = [
        "<!DOCTYPE html>",
        f'<html lang="{html.escape(lang, quote=True)}">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{html.escape(policy)}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{style}</style>",
        "</head>",
        "<body>",
    ]
    return "\n".join([*head, *body, "</body>", "</html>", ""])
