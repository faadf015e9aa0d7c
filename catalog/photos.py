"""Checking an uploaded product photo, and re-encoding it so that only the picture is kept.

The format is read from the bytes, never from the file name or the browser's content type.
Re-encoding with Pillow drops EXIF (a phone photo's GPS position, taken inside a facility) and
anything appended after the image data, such as the archive half of a polyglot file.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from enum import StrEnum

from PIL import Image, ImageOps, UnidentifiedImageError

# A 40-megapixel photo is already more than any phone takes; a larger one is most likely a
# "decompression bomb" that is small on the wire and huge in memory.
MAX_PIXELS = 40_000_000
# Buyers look at photos on phones: a longer side than this only costs storage and data.
MAX_SIDE = 2048

_CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


class PhotoProblem(StrEnum):
    NOT_AN_IMAGE = "not_an_image"
    TOO_LARGE = "too_large"
    TOO_MANY_PIXELS = "too_many_pixels"


class PhotoRefused(Exception):
    def __init__(self, problem: PhotoProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True)
class CleanPhoto:
    data: bytes
    content_type: str
    width: int
    height: int


def clean_photo(raw: bytes, max_bytes: int) -> CleanPhoto:
    """The photo re-encoded in its own format (JPEG, PNG or WebP), or PhotoRefused."""
    if len(raw) > max_bytes:
        raise PhotoRefused(PhotoProblem.TOO_LARGE)
    image = _decoded(raw)
    fmt = image.format or ""
    # Phones record "rotate me" in EXIF instead of rotating the pixels; apply it before EXIF goes.
    upright = ImageOps.exif_transpose(image)
    upright.thumbnail((MAX_SIDE, MAX_SIDE))
    return _encoded(upright, fmt, image.info.get("icc_profile"))


def _decoded(raw: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
            if image.format not in _CONTENT_TYPES:
                raise PhotoRefused(PhotoProblem.NOT_AN_IMAGE)
            # Only the header is read so far: refuse a bomb before decoding its pixels.
            if image.width * image.height > MAX_PIXELS:
                raise PhotoRefused(PhotoProblem.TOO_MANY_PIXELS)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise PhotoRefused(PhotoProblem.TOO_MANY_PIXELS) from error
    # Pillow reports damaged or truncated files with any of these.
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise PhotoRefused(PhotoProblem.NOT_AN_IMAGE) from error
    return image


def _encoded(image: Image.Image, fmt: str, icc_profile: bytes | None) -> CleanPhoto:
    options: dict[str, object] = {}
    # The colour profile is kept: it is not about the photographer, and without it colours shift.
    if icc_profile:
        options["icc_profile"] = icc_profile
    if fmt == "JPEG":
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        options.update(quality=85, optimize=True)
    elif fmt == "WEBP":
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
        options.update(quality=85)
    else:
        options.update(optimize=True)
    # Savers fall back on what the original carried (a JPEG comment, PNG text): keep only the
    # transparency, which is part of the picture.
    image.info = {k: v for k, v in image.info.items() if k == "transparency"}
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return CleanPhoto(buffer.getvalue(), _CONTENT_TYPES[fmt], image.width, image.height)
