"""Every UI string has an Indonesian translation, and the catalog is current with the source."""

import re
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from shop import ROOT
from shop.formatting import rupiah

PO = ROOT / "translations" / "id" / "LC_MESSAGES" / "messages.po"


def catalog_ids(path: Path) -> set[str]:
    with path.open("rb") as handle:
        catalog = read_po(handle)
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


def test_every_source_string_is_in_the_indonesian_catalog(tmp_path):
    pot = tmp_path / "messages.pot"
    pybabel = Path(sys.executable).parent / "pybabel"
    subprocess.run(
        [
            str(pybabel),
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "-o",
            str(pot),
            "shop",
            "catalog",
            "orders",
            "templates",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    missing = catalog_ids(pot) - catalog_ids(PO)
    assert not missing, f"run scripts/i18n-update and translate: {sorted(missing)}"


def test_no_indonesian_string_is_empty_or_fuzzy():
    with PO.open("rb") as handle:
        catalog = read_po(handle)
    for message in catalog:
        if not message.id:
            continue
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        assert all(strings), f"untranslated: {message.id!r}"
        assert not message.fuzzy, f"fuzzy: {message.id!r}"


def test_rupiah_reads_the_indonesian_way(app_ctx):
    from flask_babel import force_locale

    with app_ctx.test_request_context(), force_locale("id"):
        assert rupiah(1_500_000) == "Rp 1.500.000"
        assert rupiah(125) == "Rp 125"
    with app_ctx.test_request_context(), force_locale("en"):
        assert rupiah(1_500_000) == "IDR 1,500,000"


def test_a_forced_language_is_obeyed_inside_a_request_and_undone_after(app_ctx):
    # Templates and labels keep the request's catalogue in Flask-Babel's slot; forcing a
    # language (as quote documents do) must still switch it, and leaving must switch it back.
    from flask import render_template_string
    from flask_babel import force_locale

    from catalog.labels import unit_label
    from catalog.models import Unit

    def words() -> tuple[str, str, str]:
        return (
            render_template_string('{{ _("Products") }}'),
            unit_label(Unit.PCS),
            rupiah(1_500_000),
        )

    with app_ctx.test_request_context(headers={"Cookie": "lang=en"}):
        assert words() == ("Products", "pcs", "IDR 1,500,000")
        with force_locale("id"):
            assert words() == ("Produk", "buah", "Rp 1.500.000")
        assert words() == ("Products", "pcs", "IDR 1,500,000")


def test_template_text_takes_any_variable_name_and_escapes_the_values(app_ctx):
    # Jinja's newstyle gettext: always %-formatted, values escaped; a variable may be called
    # `message` or `plural` (the import page's errors are), as the callables' own arguments are not.
    from flask import render_template_string

    with app_ctx.test_request_context():
        assert render_template_string(
            '{{ _("line %(line)s: %(message)s", line=3, message="<b>") }}'
        ) == ("baris 3: &lt;b&gt;")
        assert (
            render_template_string(
                '{{ ngettext("%(num)s %(plural)s", "%(num)s %(plural)s", 2, plural="x") }}'
            )
            == "2 x"
        )


def test_no_ui_text_is_translated_inside_an_f_string():
    # Python 3.11 tokenises an f-string as one string: pybabel never sees a `_()` inside it, so
    # that text would stay English on an Indonesian page (the invoice's "Payment method" did).
    inside_f_string = re.compile(r"""\bf(["'])[^"']*\{\s*(_|gettext|ngettext)\(""")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in ("shop", "catalog", "orders", "payments", "finance")
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if inside_f_string.search(line)
    ]
    assert not offenders, f"use _('Text: %(value)s', value=...) instead: {offenders}"
