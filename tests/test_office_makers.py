"""The back office of a facility's makers: the WBP register, production batches and CSV imports.

Through HTTP as staff use it. The besek batch of Rutan Banjarnegara (six WBP, 1,600 pieces,
Rp 40.000 of bamboo) is recorded step by step and appears as stock on the storefront.
"""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from catalog.models import (
    Batch,
    BatchParticipation,
    BatchStatus,
    Category,
    Facility,
    Product,
    Programme,
    Unit,
    Wbp,
    WbpStatus,
)
from catalog.production import facility_today
from shop.audit import AuditEntry
from shop.extensions import db

from .helpers import login, post_form, visible_text

# Six new makers of the besek programme (invented names, as in the demo data).
BESEK_MAKERS = [
    ("BI.201/2026", "Gilang Fiktif", 300),
    ("BI.202/2026", "Heru Rekaan", 290),
    ("BI.203/2026", "Imam Contoh", 270),
    ("BI.204/2026", "Joko Samaran", 260),
    ("BI.205/2026", "Kurnia Khayalan", 250),
    ("BI.206/2026", "Lutfi Andaian", 230),
]


def office(facilities, name: str = "banjarnegara") -> str:
    return f"/office/{facilities[name]}"


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def wbp_id(number: str, facility_id: int) -> int:
    return db.session.scalar(
        select(Wbp.id).where(Wbp.registration_number == number, Wbp.facility_id == facility_id)
    )


def demo_batch(code: str = "BSK-2026-10") -> Batch:
    return db.session.scalar(select(Batch).where(Batch.code == code))


def small_besek(facility_id: int) -> Product:
    """A second besek product at Banjarnegara, with no batches yet."""
    programme = db.session.scalar(
        select(Programme).where(Programme.facility_id == facility_id, Programme.slug == "besek")
    )
    product = Product(
        slug="besek-bambu-kecil-banjarnegara",
        facility_id=facility_id,
        programme_id=programme.id,
        name="Besek bambu kecil",
        description="Besek kecil untuk ikan asin, dijual per kodi.",
        category=Category.CRAFTS,
        unit=Unit.PCS,
        base_price=125,
        min_order_qty=100,
        order_multiple=20,
    )
    db.session.add(product)
    db.session.commit()
    return product


def plan(client, base: str, product_id: int, code: str, basis: str = "pieces"):
    return post_form(
        client,
        f"{base}/batches/new",
        {"product": product_id, "code": code, "contribution_basis": basis},
    )


def batch_id_from(response) -> int:
    assert response.status_code == 302, visible_text(response.get_data(as_text=True))[:800]
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def finish(client, base: str, batch_id: int, quantity, cost, on: date | str):
    url = f"{base}/batches/{batch_id}"
    return post_form(
        client,
        f"{url}/finish",
        {"quantity_made": quantity, "material_cost": cost, "finished_on": str(on)},
        form_page=url,
    )


def upload(client, url: str, text: str, name: str = "import.csv", encoding: str = "utf-8"):
    return post_form(
        client,
        url,
        {"file": (io.BytesIO(text.encode(encoding)), name)},
        content_type="multipart/form-data",
    )


def text_of(response) -> str:
    return visible_text(response.get_data(as_text=True))


# Acceptance: the besek batch through the back office


def test_recording_the_besek_batch_puts_1600_besek_in_stock_with_every_step_audited(
    client, users, facilities
):
    bna = facilities["banjarnegara"]
    base = office(facilities)
    product = small_besek(bna)
    staff = users["staff_banjarnegara"]
    client.set_cookie("lang", "id")
    page = f"/products/{product.slug}"
    assert "Stok tersedia: 0 buah" in text_of(client.get(page))
    login(client, staff.email)

    for number, name, _pieces in BESEK_MAKERS:
        response = post_form(
            client, f"{base}/wbp/new", {"registration_number": number, "name": name}
        )
        assert response.status_code == 302
    batch_id = batch_id_from(plan(client, base, product.id, "BSK-2026-11"))
    detail = f"{base}/batches/{batch_id}"
    for number, _name, pieces in BESEK_MAKERS:
        response = post_form(
            client,
            f"{detail}/participants",
            {"wbp": wbp_id(number, bna), "contribution": pieces},
            form_page=detail,
        )
        assert response.status_code == 302
    assert post_form(client, f"{detail}/start", form_page=detail).status_code == 302
    response = finish(client, base, batch_id, 1600, 40_000, facility_today("Asia/Jakarta"))
    assert response.status_code == 302

    batch = db.session.get(Batch, batch_id)
    assert batch.status is BatchStatus.FINISHED
    assert (batch.quantity_made, batch.material_cost) == (1600, 40_000)
    assert sum(p.contribution for p in batch.participations) == 1600
    storefront = client.get(page).get_data(as_text=True)
    assert "Stok tersedia: 1.600 buah" in visible_text(storefront)
    assert "6 WBP" in visible_text(storefront)
    for number, name, _pieces in BESEK_MAKERS:
        assert name not in storefront and name.split()[0] not in storefront
        assert number not in storefront

    entries = db.session.scalars(
        select(AuditEntry).where(AuditEntry.facility_id == bna).order_by(AuditEntry.id)
    ).all()
    steps = [(e.entity, e.action) for e in entries]
    assert steps == (
        [("wbp", "create")] * 6
        + [("production_batch", "plan")]
        + [("batch_participation", "create")] * 6
        + [("production_batch", "start"), ("production_batch", "finish")]
    )
    assert {e.user_id for e in entries} == {staff.id}
    assert entries[-1].changes["quantity_made"] == [0, 1600]
    assert entries[-1].changes["status"] == ["in_production", "finished"]
    log = text_of(client.get(f"{base}/audit"))
    assert log.count(staff.email) == len(entries)


def test_a_bad_csv_row_is_reported_by_line_and_nothing_is_imported(client, users, facilities):
    base = office(facilities)
    login(client, users["staff_banjarnegara"].email)
    client.set_cookie("lang", "en")
    register_before = count(Wbp)
    response = upload(
        client,
        f"{base}/import/wbp",
        "facility;registration_number;name\n"
        "rutan-banjarnegara;BI.201/2026;Gilang Fiktif\n"
        "rutan-banjarnegra;BI.202/2026;Heru Rekaan\n"
        "rutan-banjarnegara;BI.201/2026;Imam Contoh\n",
    )
    assert response.status_code == 422
    text = text_of(response)
    assert "line 3: unknown facility “rutan-banjarnegra”." in text
    assert "line 4: registration number BI.201/2026 is also on line 2." in text
    assert "nothing was imported" in text
    assert count(Wbp) == register_before

    batch_id = batch_id_from(plan(client, base, demo_batch().product_id, "BSK-2026-11"))
    participants_before = count(BatchParticipation)
    response = upload(
        client,
        f"{base}/import/participants",
        "batch_code,registration_number,contribution\n"
        "BSK-2026-11,DEMO-BNA-001,300\n"
        "BSK-2026-11,DEMO-BNA-002,-290\n",
    )
    assert response.status_code == 422
    assert "line 3: the contribution “-290” must be a whole number from 1 to 1,000,000." in text_of(
        response
    )
    assert count(BatchParticipation) == participants_before
    assert db.session.get(Batch, batch_id).participations == []


def test_importing_the_register_and_the_participants_of_the_besek_batch(client, users, facilities):
    bna = facilities["banjarnegara"]
    base = office(facilities)
    login(client, users["staff_banjarnegara"].email)
    rows = "".join(f"rutan-banjarnegara;{n};{name}\r\n" for n, name, _ in BESEK_MAKERS)
    # Excel in Indonesian: semicolons, a byte order mark, Windows line ends.
    response = upload(
        client, f"{base}/import/wbp", "\ufefffacility;registration_number;name\r\n" + rows
    )
    assert response.status_code == 302
    assert all(wbp_id(n, bna) for n, _name, _pieces in BESEK_MAKERS)

    batch_id = batch_id_from(plan(client, base, demo_batch().product_id, "BSK-2026-11"))
    rows = "".join(f"BSK-2026-11,{n},{pieces}\n" for n, _name, pieces in BESEK_MAKERS)
    response = upload(
        client,
        f"{base}/import/participants",
        "batch_code,registration_number,contribution\n" + rows,
    )
    assert response.status_code == 302
    batch = db.session.get(Batch, batch_id)
    assert sorted(p.contribution for p in batch.participations) == [230, 250, 260, 270, 290, 300]
    # One entry per file, by the staff member, naming every record it created.
    imported = db.session.scalars(
        select(AuditEntry)
        .where(AuditEntry.facility_id == bna, AuditEntry.action.startswith("import"))
        .order_by(AuditEntry.id)
    ).all()
    makers = sorted(wbp_id(n, bna) for n, _name, _pieces in BESEK_MAKERS)
    assert [(e.action, e.changes["rows"], e.user_id) for e in imported] == [
        ("import_wbp", 6, users["staff_banjarnegara"].id),
        ("import_participants", 6, users["staff_banjarnegara"].id),
    ]
    assert imported[0].changes["ids"] == ", ".join(str(i) for i in makers)
    assert imported[1].changes["ids"] == ", ".join(str(p.id) for p in batch.participations)


@pytest.mark.parametrize(
    ("text", "encoding", "message"),
    [
        ("registration_number,name\nBI.1,Gilang Fiktif\n", "utf-8", "must name the columns"),
        ("facility,registration_number,name\n", "utf-8", "no rows to import"),
        ("facility;registration_number;name\nrutan-banjarnegara;B1;Dédi\n", "cp1252", "UTF-8"),
    ],
)
def test_a_file_that_cannot_be_read_is_a_clear_error(
    client, users, facilities, text, encoding, message
):
    login(client, users["staff_banjarnegara"].email)
    client.set_cookie("lang", "en")
    before = count(Wbp)
    response = upload(client, f"{office(facilities)}/import/wbp", text, encoding=encoding)
    assert response.status_code == 422
    assert message in text_of(response)
    assert count(Wbp) == before


def test_another_facility_s_slug_is_refused_in_the_wbp_import(client, users, facilities):
    login(client, users["staff_banjarnegara"].email)
    client.set_cookie("lang", "en")
    response = upload(
        client,
        f"{office(facilities)}/import/wbp",
        "facility,registration_number,name\nrutan-magetan,BI.301/2026,Gita Baru\n",
    )
    assert response.status_code == 422
    assert "line 2: facility “rutan-magetan” is another facility" in text_of(response)
    assert wbp_id("BI.301/2026", facilities["magetan"]) is None


def test_participants_import_refuses_another_facility_s_wbp_and_finished_batches(
    client, users, facilities
):
    login(client, users["staff_banjarnegara"].email)
    client.set_cookie("lang", "en")
    response = upload(
        client,
        f"{office(facilities)}/import/participants",
        "batch_code,registration_number,contribution\n"
        "BSK-2026-10,DEMO-BNA-001,10\n"
        "KST-2026-09,DEMO-BNA-001,10\n"
        "BSK-2026-10,DEMO-MGT-001,10\n",
    )
    text = text_of(response)
    assert "line 2: batch BSK-2026-10 is finished" in text
    assert "line 3: no batch with code “KST-2026-09” at this facility." in text
    assert "line 4: no WBP with registration number “DEMO-MGT-001” in the register." in text


# The WBP register


def test_the_register_lists_searches_and_filters_the_facility_s_wbp(client, users, facilities):
    base = office(facilities)
    login(client, users["staff_banjarnegara"].email)
    client.set_cookie("lang", "en")
    text = text_of(client.get(f"{base}/wbp"))
    assert "6 WBP" in text
    assert "Agus Fiktif" in text and "DEMO-BNA-006" in text
    assert "Gita Fiktif" not in text  # Magetan's
    found = text_of(client.get(f"{base}/wbp?q=bna-002"))
    assert "Bambang Rekaan" in found and "Agus Fiktif" not in found
    assert "Cahyo Contoh" in text_of(client.get(f"{base}/wbp?q=CAHYO"))
    assert "No WBP match." in text_of(client.get(f"{base}/wbp?status=released"))
    assert client.get(f"{base}/wbp?status=escaped").status_code == 400


def test_editing_a_wbp_keeps_registration_numbers_unique_in_the_facility(client, users, facilities):
    bna = facilities["banjarnegara"]
    base = office(facilities)
    login(client, users["staff_banjarnegara"].email)
    client.set_cookie("lang", "en")
    agus = wbp_id("DEMO-BNA-001", bna)
    url = f"{base}/wbp/{agus}/edit"
    response = post_form(client, url, {"registration_number": "DEMO-BNA-002", "name": "Agus"})
    assert response.status_code == 422
    assert "Registration number DEMO-BNA-002 is already in this facility" in text_of(response)
    assert db.session.get(Wbp, agus).name == "Agus Fiktif"

    response = post_form(
        client, url, {"registration_number": "DEMO-BNA-001", "name": "Agus Fiktif Santoso"}
    )
    assert response.status_code == 302
    entry = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert (entry.action, entry.entity_id) == ("update", agus)
    assert entry.changes == {"name": ["Agus Fiktif", "Agus Fiktif Santoso"]}

    response = post_form(
        client, f"{base}/wbp/new", {"registration_number": "DEMO-BNA-003", "name": "X"}
    )
    assert response.status_code == 422
    # Another facility may use the same number: uniqueness is per facility.
    response = post_form(
        client, f"{base}/wbp/new", {"registration_number": "DEMO-MGT-001", "name": "Mega Baru"}
    )
    assert response.status_code == 302


def test_releasing_a_wbp_keeps_the_record_and_is_audited(client, users, facilities):
    bna = facilities["banjarnegara"]
    base = office(facilities)
    login(client, users["staff_banjarnegara"].email)
    bambang = wbp_id("DEMO-BNA-002", bna)
    edit = f"{base}/wbp/{bambang}/edit"
    assert post_form(client, f"{base}/wbp/{bambang}/release", form_page=edit).status_code == 302
    wbp = db.session.get(Wbp, bambang)
    assert wbp.status is WbpStatus.RELEASED
    entry = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert (entry.action, entry.facility_id, entry.user_id) == (
        "release",
        bna,
        users["staff_banjarnegara"].id,
    )
    assert entry.changes == {"status": ["active", "released"]}
    # Released: not released twice, and no longer offered for new batches.
    entries = count(AuditEntry)
    response = post_form(client, f"{base}/wbp/{bambang}/release", form_page=f"{base}/wbp")
    assert response.status_code == 422
    assert count(AuditEntry) == entries
    detail = f"{base}/batches/{batch_id_from(plan(client, base, demo_batch().product_id, 'B-2'))}"
    assert "Bambang Rekaan" not in client.get(detail).get_data(as_text=True)
    response = post_form(
        client, f"{detail}/participants", {"wbp": bambang, "contribution": 5}, form_page=detail
    )
    assert response.status_code == 422


def test_transferring_a_wbp_creates_their_record_at_the_other_facility(client, users, facilities):
    bna, mgt = facilities["banjarnegara"], facilities["magetan"]
    base = office(facilities)
    login(client, users["staff_banjarnegara"].email)
    agus = wbp_id("DEMO-BNA-001", bna)
    edit = f"{base}/wbp/{agus}/edit"
    response = post_form(client, f"{base}/wbp/{agus}/transfer", {"target": mgt}, form_page=edit)
    assert response.status_code == 302

    assert db.session.get(Wbp, agus).status is WbpStatus.TRANSFERRED
    arrival = db.session.get(Wbp, wbp_id("DEMO-BNA-001", mgt))
    assert (arrival.name, arrival.status) == ("Agus Fiktif", WbpStatus.ACTIVE)
    entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()[-2:]
    assert [(e.action, e.facility_id, e.entity_id) for e in entries] == [
        ("transfer", bna, agus),
        ("transfer_in", mgt, arrival.id),
    ]
    assert entries[0].changes["to"] == "rutan-magetan"
    assert entries[1].changes["from"] == "rutan-banjarnegara"
    assert {e.user_id for e in entries} == {users["staff_banjarnegara"].id}
    # The record stays at Banjarnegara, where premi earned in the besek batch is paid from.
    assert "Agus Fiktif" in text_of(client.get(f"{base}/wbp?status=transferred"))

    magetan_staff = client.application.test_client()
    login(magetan_staff, users["staff_magetan"].email)
    assert "Agus Fiktif" in text_of(magetan_staff.get(f"{office(facilities, 'magetan')}/wbp"))


def test_a_transfer_is_refused_when_the_target_has_that_registration_number(
    client, users, facilities
):
    bna, mgt = facilities["banjarnegara"], facilities["magetan"]
    db.session.add(Wbp(facility_id=mgt, registration_number="DEMO-BNA-003", name="Nur Lain"))
    db.session.commit()
    base = office(facilities)
    login(client, users["staff_banjarnegara"].email)
    client.set_cookie("lang", "en")
    cahyo = wbp_id("DEMO-BNA-003", bna)
    url = f"{base}/wbp/{cahyo}/transfer"
    entries = count(AuditEntry)
    response = post_form(client, url, {"target": mgt}, form_page=f"{base}/wbp")
    assert response.status_code == 422
    assert "already has a WBP with registration number DEMO-BNA-003" in text_of(response)
    # Its own facility is not a target, and neither is a facility that does not exist.
    assert post_form(client, url, {"target": bna}, form_page=f"{base}/wbp").status_code == 422
    assert post_form(client, url, {"target": 999_999}, form_page=f"{base}/wbp").status_code == 422
    assert post_form(client, url, {"target": "x"}, form_page=f"{base}/wbp").status_code == 422
    assert db.session.get(Wbp, cahyo).status is WbpStatus.ACTIVE
    assert count(AuditEntry) == entries


# Production batches


def test_the_batch_list_shows_the_facility_s_batches_newest_first(client, users, facilities):
    base = office(facilities)
    login(client, users["staff_banjarnegara"].email)
    client.set_cookie("lang", "en")
    batch_id_from(plan(client, base, demo_batch().product_id, "BSK-2026-11"))
    text = text_of(client.get(f"{base}/batches"))
    # Newest recorded first: the batch just planned, then the demo's rajut and besek batches.
    assert text.index("BSK-2026-11") < text.index("RJT-2026-09") < text.index("BSK-2026-10")
    assert "BSK-2026-10 Besek bambu Finished 1,600 6" in text
    assert "KST-2026-09" not in text


def test_a_batch_code_is_unique_per_product(client, users, facilities):
    base = office(facilities)
    login(client, users["staff_banjarnegara"].email)
    client.set_cookie("lang", "en")
    besek = demo_batch().product_id
    before = count(Batch)
    response = plan(client, base, besek, "BSK-2026-10")
    assert response.status_code == 422
    assert "Besek bambu already has a batch with code BSK-2026-10" in text_of(response)
    assert plan(client, base, besek, "").status_code == 422
    assert plan(client, base, besek, "BSK-2026-12", basis="days").status_code == 422
    assert count(Batch) == before
    # Another product may use the same code.
    tas = demo_batch("RJT-2026-09").product_id
    assert plan(client, base, tas, "BSK-2026-10").status_code == 302


def test_a_batch_cannot_finish_without_participants(client, users, facilities):
    base = office(facilities)
    login(client, users["staff_banjarnegara"].email)
    client.set_cookie("lang", "en")
    batch_id = batch_id_from(plan(client, base, demo_batch().product_id, "BSK-2026-11"))
    detail = f"{base}/batches/{batch_id}"
    # Not started yet: it cannot finish either.
    assert finish(client, base, batch_id, 1600, 40_000, date.today()).status_code == 422
    post_form(client, f"{detail}/start", form_page=detail)
    response = finish(client, base, batch_id, 1600, 40_000, facility_today("Asia/Jakarta"))
    assert response.status_code == 422
    assert "Add at least one participant first" in text_of(response)
    assert db.session.get(Batch, batch_id).status is BatchStatus.IN_PRODUCTION


@pytest.mark.parametrize(
    ("quantity", "cost", "days_ahead", "message"),
    [
        ("0", "40000", 0, "quantity made as a whole number from 1 to 1,000,000"),
        ("1.600", "40000", 0, "quantity made as a whole number"),
        ("-1600", "40000", 0, "quantity made as a whole number"),
        ("1000001", "40000", 0, "quantity made as a whole number"),
        ("1600", "-1", 0, "material cost in whole rupiah"),
        ("1600", "40.000,50", 0, "material cost in whole rupiah"),
        ("1600", "40000", 1, "cannot be in the future"),
        ("1600", "40000", -1, "cannot be before the start"),
    ],
)
def test_finishing_checks_quantity_cost_and_date(
    client, users, facilities, quantity, cost, days_ahead, message
):
    bna = facilities["banjarnegara"]
    base = office(facilities)
    login(client, users["staff_banjarnegara"].email)
    client.set_cookie("lang", "en")
    batch_id = batch_id_from(plan(client, base, demo_batch().product_id, "BSK-2026-11"))
    detail = f"{base}/batches/{batch_id}"
    post_form(
        client,
        f"{detail}/participants",
        {"wbp": wbp_id("DEMO-BNA-001", bna), "contribution": 300},
        form_page=detail,
    )
    post_form(client, f"{detail}/start", form_page=detail)
    on = facility_today("Asia/Jakarta") + timedelta(days=days_ahead)
    response = finish(client, base, batch_id, quantity, cost, on)
    assert response.status_code == 422
    assert message in text_of(response)
    assert db.session.get(Batch, batch_id).status is BatchStatus.IN_PRODUCTION


def test_starting_a_batch_dates_it_in_the_facility_s_time_zone(client, users, facilities):
    ruteng = facilities["ruteng"]
    base = office(facilities, "ruteng")
    login(client, users["admin"].email)
    chairs = demo_batch("MBL-2026-08").product_id
    batch_id = batch_id_from(plan(client, base, chairs, "MBL-2026-12", basis="hours"))
    detail = f"{base}/batches/{batch_id}"
    assert post_form(client, f"{detail}/start", form_page=detail).status_code == 302
    batch = db.session.get(Batch, batch_id)
    assert batch.started_on == facility_today(db.session.get(Facility, ruteng).timezone)
    # A batch in production does not start again.
    assert post_form(client, f"{detail}/start", form_page=detail).status_code == 422


def test_participants_are_added_once_and_removed_until_the_batch_is_finished(
    client, users, facilities
):
    bna = facilities["banjarnegara"]
    base = office(facilities)
    login(client, users["staff_banjarnegara"].email)
    client.set_cookie("lang", "en")
    batch_id = batch_id_from(plan(client, base, demo_batch().product_id, "BSK-2026-11"))
    detail = f"{base}/batches/{batch_id}"
    agus = wbp_id("DEMO-BNA-001", bna)

    def add(contribution):
        return post_form(
            client,
            f"{detail}/participants",
            {"wbp": agus, "contribution": contribution},
            form_page=detail,
        )

    for bad in ("0", "-300", "2.5", ""):
        assert add(bad).status_code == 422
    assert add("300").status_code == 302
    response = add("10")
    assert response.status_code == 422
    assert "WBP DEMO-BNA-001 is already a participant of this batch." in text_of(response)
    batch = db.session.get(Batch, batch_id)
    assert [(p.wbp_id, p.contribution) for p in batch.participations] == [(agus, 300)]

    participation = batch.participations[0].id
    remove = f"{detail}/participants/{agus}/remove"
    assert post_form(client, remove, form_page=detail).status_code == 302
    assert db.session.get(BatchParticipation, participation) is None
    entry = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert (entry.action, entry.entity) == ("delete", "batch_participation")
    assert entry.changes["contribution"] == [300, None]

    # A finished batch keeps its participants.
    finished = demo_batch()
    kept = finished.participations[0]
    url = f"{base}/batches/{finished.id}/participants/{kept.wbp_id}/remove"
    response = post_form(client, url, form_page=detail)
    assert response.status_code == 422
    assert "participants can no longer change" in text_of(response)
    assert db.session.get(BatchParticipation, kept.id) is not None


def test_a_finished_batch_reopens_for_correction_only_while_nothing_is_allocated(
    client, users, facilities
):
    base = office(facilities)
    login(client, users["staff_banjarnegara"].email)
    client.set_cookie("lang", "en")
    batch = demo_batch()
    detail = f"{base}/batches/{batch.id}"
    batch.quantity_allocated = 100
    db.session.commit()
    response = post_form(client, f"{detail}/reopen", form_page=detail)
    assert response.status_code == 422
    assert "already allocated to orders" in text_of(response)
    assert db.session.get(Batch, batch.id).status is BatchStatus.FINISHED

    batch = demo_batch()
    batch.quantity_allocated = 0
    db.session.commit()
    assert post_form(client, f"{detail}/reopen", form_page=detail).status_code == 302
    assert demo_batch().status is BatchStatus.IN_PRODUCTION
    # Out of stock until finished again, with the corrected quantity.
    assert "Stock on hand: 0 pcs" in text_of(client.get("/products/besek-bambu-banjarnegara"))
    response = finish(client, base, batch.id, 1580, 40_000, facility_today("Asia/Jakarta"))
    assert response.status_code == 302
    assert "Stock on hand: 1,580 pcs" in text_of(client.get("/products/besek-bambu-banjarnegara"))


# Who may see what


def makers_routes(bna_wbp: int, bna_batch: int) -> list[tuple[str, str]]:
    """Every route of the makers' back office, with Banjarnegara ids."""
    return [
        ("GET", "/wbp"),
        ("GET", "/wbp/new"),
        ("POST", "/wbp/new"),
        ("GET", f"/wbp/{bna_wbp}/edit"),
        ("POST", f"/wbp/{bna_wbp}/edit"),
        ("POST", f"/wbp/{bna_wbp}/release"),
        ("POST", f"/wbp/{bna_wbp}/transfer"),
        ("GET", "/batches"),
        ("GET", "/batches/new"),
        ("POST", "/batches/new"),
        ("GET", f"/batches/{bna_batch}"),
        ("POST", f"/batches/{bna_batch}/start"),
        ("POST", f"/batches/{bna_batch}/finish"),
        ("POST", f"/batches/{bna_batch}/reopen"),
        ("POST", f"/batches/{bna_batch}/participants"),
        ("POST", f"/batches/{bna_batch}/participants/{bna_wbp}/remove"),
        ("GET", "/import/wbp"),
        ("POST", "/import/wbp"),
        ("GET", "/import/participants"),
        ("POST", "/import/participants"),
    ]


def test_magetan_staff_get_404_for_everything_of_banjarnegara(client, users, facilities):
    bna, mgt = facilities["banjarnegara"], facilities["magetan"]
    batch = demo_batch()
    routes = makers_routes(wbp_id("DEMO-BNA-001", bna), batch.id)
    login(client, users["staff_magetan"].email)
    own = office(facilities, "magetan")
    entries = count(AuditEntry)
    for method, path in routes:
        for base in (office(facilities), own):
            if base == own and not any(part.isdecimal() for part in path.split("/")):
                continue  # Magetan's own lists and forms are theirs to use
            url = base + path
            if method == "GET":
                response = client.get(url)
            else:
                response = post_form(client, url, {"target": mgt}, form_page=f"{own}/wbp")
            assert response.status_code == 404, (method, url, response.status_code)
    assert count(AuditEntry) == entries
    assert db.session.get(Wbp, wbp_id("DEMO-BNA-001", bna)).status is WbpStatus.ACTIVE


def test_magetan_staff_cannot_use_banjarnegara_wbp_or_products_in_their_forms(
    client, users, facilities
):
    bna, mgt = facilities["banjarnegara"], facilities["magetan"]
    own = office(facilities, "magetan")
    login(client, users["staff_magetan"].email)
    client.set_cookie("lang", "en")
    batches = count(Batch)
    response = plan(client, own, demo_batch().product_id, "BSK-MGT-1")
    assert response.status_code == 422
    assert "Choose a product of this facility." in text_of(response)
    assert count(Batch) == batches

    keset = demo_batch("KST-2026-10").product_id
    batch_id = batch_id_from(plan(client, own, keset, "KST-2026-11"))
    detail = f"{own}/batches/{batch_id}"
    assert "Agus Fiktif" not in client.get(detail).get_data(as_text=True)
    response = post_form(
        client,
        f"{detail}/participants",
        {"wbp": wbp_id("DEMO-BNA-001", bna), "contribution": 40},
        form_page=detail,
    )
    assert response.status_code == 422
    assert "Choose an active WBP of this facility." in text_of(response)
    assert db.session.get(Batch, batch_id).participations == []
    assert wbp_id("DEMO-MGT-001", mgt)  # Magetan's own makers are offered instead


@pytest.mark.parametrize("who", ["finance_banjarnegara", "finance_regional", "buyer"])
def test_finance_and_buyers_get_404(client, users, facilities, who):
    batch = demo_batch()
    login(client, users[who].email)
    base = office(facilities)
    for path in ("/wbp", f"/batches/{batch.id}", "/batches", "/import/wbp", "/batches/new"):
        assert client.get(base + path).status_code == 404, path
    response = post_form(
        client, f"{base}/wbp/new", {"registration_number": "X1", "name": "X"}, form_page="/login"
    )
    assert response.status_code == 404


def test_signed_out_visitors_are_asked_to_sign_in(client, facilities):
    response = client.get(f"{office(facilities)}/wbp")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_admin_may_work_in_any_facility(client, users, facilities):
    login(client, users["admin"].email)
    assert "Agus Fiktif" in text_of(client.get(f"{office(facilities)}/wbp"))
    assert "Gita Fiktif" in text_of(client.get(f"{office(facilities, 'magetan')}/wbp"))


def test_a_post_without_csrf_token_is_refused(client, users, facilities):
    bna = facilities["banjarnegara"]
    base = office(facilities)
    login(client, users["staff_banjarnegara"].email)
    agus = wbp_id("DEMO-BNA-001", bna)
    batch = demo_batch()
    entries = count(AuditEntry)
    assert client.post(f"{base}/wbp/{agus}/release").status_code == 400
    assert client.post(f"{base}/batches/{batch.id}/reopen").status_code == 400
    response = client.post(f"{base}/wbp/new", data={"registration_number": "X1", "name": "X"})
    assert response.status_code == 400
    assert db.session.get(Wbp, agus).status is WbpStatus.ACTIVE
    assert count(AuditEntry) == entries


def test_wbp_names_never_reach_the_storefront_after_a_batch_is_recorded(client, users, facilities):
    """The besek product page and the facility page show counts of makers, never who they are."""
    test_recording_the_besek_batch_puts_1600_besek_in_stock_with_every_step_audited(
        client, users, facilities
    )
    for lang in ("id", "en"):
        client.set_cookie("lang", lang)
        for page in (
            "/products/besek-bambu-kecil-banjarnegara",
            "/products/besek-bambu-banjarnegara",
            "/facilities/rutan-banjarnegara",
            "/products?q=besek",
        ):
            html = client.get(page).get_data(as_text=True)
            names = db.session.execute(
                select(Wbp.name, Wbp.registration_number).where(
                    Wbp.facility_id == facilities["banjarnegara"]
                )
            ).all()
            for name, number in names:
                assert name not in html, (page, name)
                assert number not in html, (page, number)


def test_staff_lock_batches_as_checkout_does_so_payments_are_not_blocked(
    app_ctx, facilities, count_queries
):
    # FOR UPDATE would also block the KEY SHARE lock that a payment's ledger entries take on the
    # batch they name (a deadlock the soak found between checkout and payments).
    from catalog.models import ContributionBasis, Facility, Product
    from catalog.services import production

    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks exist on PostgreSQL only")
    facility = db.session.get(Facility, facilities["banjarnegara"])
    product = db.session.scalar(select(Product).where(Product.facility_id == facility.id))
    batch = production.plan_batch(facility.id, product, "LOCK-1", ContributionBasis.PIECES)
    with count_queries() as counter:
        production.start_batch(batch, facility)
    locks = [s for s in counter.statements if "FOR " in s and "UPDATE" in s]
    assert locks and all("FOR NO KEY UPDATE" in s for s in locks), locks
