"""The media type of a base64 image read from its first bytes, and the types Anthropic takes.

Anthropic checks the declared media type against the image itself and refuses a mismatch ("Image
does not match the provided media type image/png"), and takes only JPEG, PNG, GIF and WebP; callers
often declare the wrong type (`ImagePart`'s default is PNG, a screenshot tool writes JPEG) or the
non-standard `image/jpg`.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["ANTHROPIC_IMAGE_TYPES", "declared_media_type", "sniffed_media_type"]

ANTHROPIC_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
"""The media types the Messages API takes for an image, in the order its error message names them."""

_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}
_HEAD = 16  # base64 characters decoded: 12 bytes, enough for every signature below


def declared_media_type(media_type: str) -> str:
    """`media_type` as the APIs spell it: lower case, `image/jpg` as `image/jpeg`."""
    lowered = media_type.strip().lower()
    return _ALIASES.get(lowered, lowered)


def sniffed_media_type(data: str) -> str | None:
    """The media type the first bytes of base64 `data` show, or None for none of the four types."""
    head = data[:_HEAD].strip()
    try:
        raw = base64.b64decode(head + "=" * (-len(head) % 4))
    except (binascii.Error, ValueError):
        return None
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if raw.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if raw.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if raw.startswith(b"RIFF") and raw[8:12] == b"WEBP":
        return "image/webp"
    return None
