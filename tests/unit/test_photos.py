"""Uploaded photos: the format is read from the bytes, and only the picture is kept."""

import io
import os

import pytest
from PIL import Image

from catalog.photos import MAX_SIDE, PhotoProblem, PhotoRefused, clean_photo

TWO_MB = 2 * 1024 * 1024
GPS_LATITUDE = 2  # EXIF GPS tag: where the phone was


def image_bytes(fmt: str, size=(64, 48), mode="RGB", **save_options) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (196, 154, 92) if mode == "RGB" else 0).save(
        buffer, format=fmt, **save_options
    )
    return buffer.getvalue()


def phone_photo_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Fiktif Phone"  # camera make
    exif[0x0112] = 6  # orientation: rotate 90 degrees to display
    exif.get_ifd(0x8825)[GPS_LATITUDE] = (7.0, 23.0, 50.0)  # near Banjarnegara
    return image_bytes("JPEG", size=(64, 48), exif=exif.tobytes())


def refusal(raw: bytes, max_bytes: int = TWO_MB) -> PhotoProblem:
    with pytest.raises(PhotoRefused) as refused:
        clean_photo(raw, max_bytes)
    return refused.value.problem


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")],
)
def test_a_photo_keeps_its_format(fmt, content_type):
    photo = clean_photo(image_bytes(fmt), TWO_MB)
    assert photo.content_type == content_type
    assert Image.open(io.BytesIO(photo.data)).format == fmt
    assert (photo.width, photo.height) == (64, 48)


def test_a_text_file_named_like_a_photo_is_not_an_image():
    assert refusal(b"Daftar harga besek: Rp 125 per buah\n") is PhotoProblem.NOT_AN_IMAGE


def test_an_image_in_another_format_is_refused():
    assert refusal(image_bytes("GIF", mode="P")) is PhotoProblem.NOT_AN_IMAGE
    assert refusal(image_bytes("BMP")) is PhotoProblem.NOT_AN_IMAGE


def test_a_truncated_photo_is_refused():
    whole = image_bytes("PNG", size=(400, 300), mode="RGB")
    noisy = Image.frombytes("RGB", (200, 200), os.urandom(200 * 200 * 3))
    buffer = io.BytesIO()
    noisy.save(buffer, format="JPEG")
    assert refusal(buffer.getvalue()[: len(buffer.getvalue()) // 2]) is PhotoProblem.NOT_AN_IMAGE
    assert refusal(whole[:60]) is PhotoProblem.NOT_AN_IMAGE


def test_more_bytes_than_allowed_is_too_large():
    assert refusal(image_bytes("PNG"), max_bytes=100) is PhotoProblem.TOO_LARGE


def test_a_huge_picture_in_a_small_file_is_refused_before_decoding():
    bomb = image_bytes("PNG", size=(8000, 6000), mode="1")  # 48 megapixels, a few kB
    assert len(bomb) < 100_000
    assert refusal(bomb) is PhotoProblem.TOO_MANY_PIXELS


def test_exif_and_gps_are_removed_and_the_photo_is_turned_upright():
    raw = phone_photo_with_gps()
    assert Image.open(io.BytesIO(raw)).getexif().get_ifd(0x8825)[GPS_LATITUDE]
    photo = clean_photo(raw, TWO_MB)
    cleaned = Image.open(io.BytesIO(photo.data))
    assert not cleaned.getexif()
    assert "exif" not in cleaned.info
    assert b"Fiktif Phone" not in photo.data
    # The orientation tag asked for a quarter turn: the pixels are turned instead.
    assert cleaned.size == (48, 64)


def test_a_jpeg_comment_is_removed():
    raw = image_bytes("JPEG", comment=b"rahasia")
    assert b"rahasia" in raw
    photo = clean_photo(raw, TWO_MB)
    assert b"rahasia" not in photo.data


def test_a_payload_appended_after_the_image_is_dropped():
    polyglot = image_bytes("PNG") + b"PK\x03\x04" + b"<?php system($_GET['c']); ?>"
    photo = clean_photo(polyglot, TWO_MB)
    assert b"PK\x03\x04" not in photo.data
    assert b"<?php" not in photo.data


def test_transparency_survives():
    photo = clean_photo(image_bytes("PNG", mode="RGBA"), TWO_MB)
    assert Image.open(io.BytesIO(photo.data)).mode == "RGBA"


def test_a_very_large_photo_is_scaled_down_to_a_size_phones_need():
    photo = clean_photo(image_bytes("JPEG", size=(4000, 3000)), TWO_MB)
    assert max(photo.width, photo.height) == MAX_SIDE
    assert Image.open(io.BytesIO(photo.data)).size == (photo.width, photo.height)
