"""Forms of the payment pages, and the check of a transfer proof a buyer uploads.

A proof is read from its bytes, never from its name or the browser's content type: a photo or
screenshot goes through `catalog.photos` (re-encoded, so a phone's location data is dropped), and
a PDF is kept only when a PDF reader can open it and it runs nothing when opened.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject
from wtforms import DateField, IntegerField, RadioField, SelectChoice, StringField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from catalog import photos
from catalog.forms import WholeNumberField, megabytes
from orders.models import OrderLine, PaymentMethod
from shop.i18n import gettext as _
from shop.i18n import lazy_gettext as _l

from .services import MAX_AMOUNT

MAX_PROOF_BYTES = 4 * 1024 * 1024
PDF = "application/pdf"
PDF_MAGIC = b"%PDF-"
MAX_REFERENCE = 120  # the length of Payment.reference
MAX_NOTE = 300
MAX_REASON = 500
AT_MOST = _l("Use at most %(max)d characters.")


# The transfer proof


class ProofProblem(StrEnum):
    NOT_A_PROOF = "not_a_proof"
    TOO_LARGE = "too_large"
    TOO_MANY_PIXELS = "too_many_pixels"
    LOCKED = "locked"
    ACTIVE = "active"


class ProofRefused(Exception):
    def __init__(self, problem: ProofProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True)
class CleanProof:
    data: bytes
    content_type: str


_PHOTO_PROBLEMS = {
    photos.PhotoProblem.NOT_AN_IMAGE: ProofProblem.NOT_A_PROOF,
    photos.PhotoProblem.TOO_LARGE: ProofProblem.TOO_LARGE,
    photos.PhotoProblem.TOO_MANY_PIXELS: ProofProblem.TOO_MANY_PIXELS,
}


def clean_proof(raw: bytes, max_bytes: int = MAX_PROOF_BYTES) -> CleanProof:
    """A JPEG, PNG or WebP re-encoded, or a PDF that opens, as it came; ProofRefused otherwise."""
    if len(raw) > max_bytes:
        raise ProofRefused(ProofProblem.TOO_LARGE)
    if raw.startswith(PDF_MAGIC):
        _check_pdf(raw)
        return CleanProof(raw, PDF)
    try:
        photo = photos.clean_photo(raw, max_bytes)
    except photos.PhotoRefused as refused:
        raise ProofRefused(_PHOTO_PROBLEMS[refused.problem]) from refused
    return CleanProof(photo.data, photo.content_type)


# What makes a PDF act when staff open it: scripts, programs to start, files carried inside.
# A bank's receipt has none of them; links (/URI) and jumps to a page (/GoTo) are harmless.
ACTIVE_PDF_KEYS = frozenset(
    {"/JS", "/JavaScript", "/Launch", "/EmbeddedFile", "/EmbeddedFiles", "/RichMedia", "/XFA"}
)
ACTIVE_PDF_ACTIONS = frozenset(
    {"/JavaScript", "/Launch", "/ImportData", "/SubmitForm", "/GoToE", "/RichMediaExecute"}
)


def _has_active_content(reader: PdfReader) -> bool:
    """Walks every object reachable from the trailer, each once; streams are not decoded."""
    seen: set[tuple[int, int]] = set()
    stack: list[Any] = [reader.trailer]
    while stack:
        item = stack.pop()
        if isinstance(item, IndirectObject):
            if (item.idnum, item.generation) in seen:
                continue
            seen.add((item.idnum, item.generation))
            item = item.get_object()
        if isinstance(item, DictionaryObject):  # a stream's dictionary too
            action = item.get("/S")
            if isinstance(action, IndirectObject):
                action = action.get_object()
            if ACTIVE_PDF_KEYS & set(item.keys()) or action in ACTIVE_PDF_ACTIONS:
                return True
            stack.extend(dict.values(item))  # unresolved: references are followed above
        elif isinstance(item, ArrayObject):
            stack.extend(item)
    return False


def _check_pdf(raw: bytes) -> None:
    try:
        reader = PdfReader(io.BytesIO(raw))
        pages = len(reader.pages)
        active = _has_active_content(reader)
    except FileNotDecryptedError as error:
        # Staff could not open it: a bank's e-statement is often locked with a password.
        raise ProofRefused(ProofProblem.LOCKED) from error
    # pypdf reports a damaged file with its own errors and with plain Python ones (KeyError,
    # TypeError, RecursionError...): whatever it raises, the upload is not a readable PDF.
    except Exception as error:
        raise ProofRefused(ProofProblem.NOT_A_PROOF) from error
    if pages < 1:
        raise ProofRefused(ProofProblem.NOT_A_PROOF)
    if active:
        raise ProofRefused(ProofProblem.ACTIVE)


def proof_refusal(problem: ProofProblem, max_bytes: int = MAX_PROOF_BYTES) -> str:
    """Why an upload was refused, in the buyer's language."""
    if problem is ProofProblem.TOO_LARGE:
        return _("The file is too large: at most %(size)s MB.", size=megabytes(max_bytes))
    if problem is ProofProblem.TOO_MANY_PIXELS:
        return _(
            "The picture has too many pixels: at most %(count)s megapixels.",
            count=photos.MAX_PIXELS // 1_000_000,
        )
    if problem is ProofProblem.ACTIVE:
        return _(
            "This PDF contains a script or an attached file, which we do not accept. Upload a "
            "screenshot of the transfer, or the PDF saved again without them."
        )
    if problem is ProofProblem.LOCKED:
        return _(
            "This PDF is locked with a password, so the facility cannot open it. Upload it "
            "without the password, or a screenshot of the transfer."
        )
    return _(
        "This file is neither a picture nor a PDF that can be opened. Upload a JPEG, PNG or "
        "WebP picture, or a PDF."
    )


class ProofForm(FlaskForm):
    # No FileAllowed: the name says nothing; `clean_proof` reads the format from the bytes.
    proof = FileField(
        _l("Proof of transfer"),
        validators=[FileRequired(_l("Choose the file to upload."))],
    )

    clean: CleanProof | None = None

    def validate_proof(self, field: FileField) -> None:
        # One byte more than allowed is enough to know the file is too large.
        raw = field.data.read(MAX_PROOF_BYTES + 1)
        try:
            self.clean = clean_proof(raw)
        except ProofRefused as refused:
            raise ValidationError(proof_refusal(refused.problem)) from refused


class CardForm(FlaskForm):
    """Only the CSRF token: the amount charged is what is due, never a number the browser sends."""


class ReturnForm(FlaskForm):
    """Only the CSRF token: what Stripe refunds is each card payment the order refused, whole."""


# Staff: money received


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class ReceiptForm(FlaskForm):
    """Money received by transfer or at pickup; card payments are confirmed by Stripe."""

    method = RadioField(
        _l("Received by"),
        choices=[
            SelectChoice(PaymentMethod.BANK_TRANSFER.value, _l("Bank transfer")),
            SelectChoice(PaymentMethod.PAY_ON_PICKUP.value, _l("Pay on pickup")),
        ],
        validators=[InputRequired(message=_l("Choose how the money was received."))],
    )
    amount = WholeNumberField(
        _l("Amount received (Rp)"),
        validators=[
            InputRequired(message=_l("Enter the amount received in whole rupiah.")),
            NumberRange(
                min=1,
                max=MAX_AMOUNT,
                message=_l("The amount must be a whole number of rupiah above 0."),
            ),
        ],
    )
    received_on = DateField(
        _l("Date received"),
        validators=[InputRequired(message=_l("Enter the date the money was received."))],
    )
    reference = StringField(
        _l("Bank reference or receipt number"),
        filters=[_strip],
        validators=[
            DataRequired(message=_l("Give the bank's reference or receipt number.")),
            Length(max=MAX_REFERENCE, message=AT_MOST),
        ],
    )
    receipt_note = StringField(
        _l("Note (optional)"),
        filters=[_strip],
        validators=[Optional(), Length(max=MAX_NOTE, message=AT_MOST)],
    )

    def __init__(self, *args: Any, today: date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today  # in the facility's own time zone

    def validate_received_on(self, field: DateField) -> None:
        if field.data is not None and field.data > self.today:
            raise ValidationError(_("The date received cannot be in the future."))

    @property
    def payment_method(self) -> PaymentMethod:
        return PaymentMethod(self.method.data)


# Staff: refunds


class RefundForm(FlaskForm):
    """A reason, and `refund_form` adds a quantity field per line with units left to refund."""

    refund_reason = StringField(
        _l("Reason for the refund"),
        filters=[_strip],
        validators=[
            DataRequired(message=_l("Please give the reason for the refund.")),
            Length(max=MAX_REASON, message=AT_MOST),
        ],
    )

    line_fields: list[tuple[OrderLine, int, str]]  # line, units refundable, field name

    @property
    def quantities(self) -> dict[int, int]:
        """Line id -> units refunded now; a blank field counts as none."""
        return {line.id: self[name].data or 0 for line, _left, name in self.line_fields}


def refund_field_name(line: OrderLine) -> str:
    return f"refund_{line.id}"


def refund_form(
    lines: Iterable[OrderLine], refundable: Mapping[int, int], posted: bool = True
) -> RefundForm:
    """A quantity from 0 to what can still be refunded, for each line with units left (the
    refund service checks again under the order's lock)."""
    open_lines = [(line, refundable[line.id]) for line in lines if refundable.get(line.id, 0) > 0]

    class OrderRefundForm(RefundForm):
        pass

    for line, left in open_lines:
        setattr(
            OrderRefundForm,
            refund_field_name(line),
            IntegerField(
                line.product.name,
                default=0,
                validators=[
                    Optional(),
                    NumberRange(
                        min=0,
                        max=left,
                        message=_l(
                            "Enter a whole number from 0 to %(left)s: the units that can still "
                            "be refunded.",
                            left=left,
                        ),
                    ),
                ],
            ),
        )
    form = OrderRefundForm() if posted else OrderRefundForm(formdata=None)
    form.line_fields = [(line, left, refund_field_name(line)) for line, left in open_lines]
    return form
