"""The admin: facilities, office accounts and their roles, and the audit log across facilities."""

import re

import pytest
from sqlalchemy import func, select

from catalog.models import Facility, FacilityKind
from catalog.rules import facility_slug_base, unique_slug
from shop.accounts.models import Role, RoleGrant, User
from shop.accounts.services import grant_refusal
from shop.audit import AuditEntry
from shop.extensions import db, limiter
from shop.mail import OutboxMessage

from .helpers import csrf_token, login, post_form, visible_text

NAMLEA = {
    "name": "Lapas Kelas III Namlea",
    "kind": "lapas",
    "facility_class": "III",
    "city": "Kabupaten Buru",
    "province": "Maluku",
    "regional_office": "Kanwil Ditjenpas Maluku",
    "timezone": "Asia/Jayapura",
}


@pytest.fixture(autouse=True)
def fresh_limits(app):
    limiter.reset()


@pytest.fixture
def admin(client, users):
    client.set_cookie("lang", "en")
    login(client, "admin@example.id")
    return client


def audit_entries(action, entity):
    db.session.rollback()
    return db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == action, AuditEntry.entity == entity)
    ).all()


def grants_of(email):
    db.session.rollback()
    user = db.session.scalar(select(User).where(User.email == email))
    return {(g.role, g.facility_id) for g in user.grants}


def text_of(response):
    return visible_text(response.get_data(as_text=True))


# --- The rules, without a database --------------------------------------------------------------


def test_a_facility_address_leaves_out_its_class():
    assert facility_slug_base("Rutan Kelas IIB Banjarnegara") == "rutan-banjarnegara"
    assert facility_slug_base("Rutan Kelas II B Serang") == "rutan-serang"
    assert facility_slug_base("Lapas Perempuan Kelas IIA Semarang") == "lapas-perempuan-semarang"
    assert facility_slug_base("Lapas Kelas III Namlea") == "lapas-namlea"


def test_a_taken_address_gets_the_next_number():
    assert unique_slug("lapas-namlea", set(), 80, "facility") == "lapas-namlea"
    assert unique_slug("lapas-namlea", {"lapas-namlea"}, 80, "facility") == "lapas-namlea-2"
    assert (
        unique_slug("lapas-namlea", {"lapas-namlea", "lapas-namlea-2"}, 80, "facility")
        == "lapas-namlea-3"
    )


def test_which_roles_name_a_facility():
    assert grant_refusal(Role.STAFF, None) is not None
    assert grant_refusal(Role.STAFF, 7) is None
    assert grant_refusal(Role.FINANCE, None) is None  # regional office: every facility
    assert grant_refusal(Role.FINANCE, 7) is None
    assert grant_refusal(Role.ADMIN, 7) is not None
    assert grant_refusal(Role.BUYER, 7) is not None
    assert grant_refusal(Role.ADMIN, None) is None


# --- Facilities ---------------------------------------------------------------------------------


def test_admin_adds_a_facility_that_appears_in_the_directory(admin):
    response = post_form(admin, "/admin/facilities/new", NAMLEA)
    assert response.status_code == 302

    namlea = db.session.scalar(select(Facility).where(Facility.name == NAMLEA["name"]))
    assert namlea.slug == "lapas-namlea"
    assert namlea.kind is FacilityKind.LAPAS
    assert namlea.timezone == "Asia/Jayapura"
    assert "Lapas Kelas III Namlea" in text_of(admin.get("/facilities"))
    assert "Kabupaten Buru" in text_of(admin.get("/facilities/lapas-namlea"))

    [created] = audit_entries("create", "facility")
    assert created.facility_id == namlea.id
    assert created.changes["name"] == [None, "Lapas Kelas III Namlea"]


def test_editing_a_facility_keeps_its_address(admin, facilities):
    magetan = facilities["magetan"]
    form_page = admin.get(f"/admin/facilities/{magetan}")
    assert 'value="Rutan Kelas IIB Magetan"' in form_page.get_data(as_text=True)

    # The Rutan is upgraded to class IIA.
    response = post_form(
        admin,
        f"/admin/facilities/{magetan}",
        {
            "name": "Rutan Kelas IIA Magetan",
            "kind": "rutan",
            "facility_class": "IIA",
            "city": "Kabupaten Magetan",
            "province": "Jawa Timur",
            "regional_office": "Kanwil Ditjenpas Jawa Timur",
            "timezone": "Asia/Jakarta",
        },
    )
    assert response.status_code == 302
    facility = db.session.get(Facility, magetan)
    assert facility.slug == "rutan-magetan"
    assert facility.facility_class == "IIA"
    assert "Rutan Kelas IIA Magetan" in text_of(admin.get("/facilities/rutan-magetan"))
    # Product search covers the facility's name, and follows the new one.
    assert "Keset kain perca" in text_of(admin.get("/products?q=IIA"))

    [updated] = audit_entries("update", "facility")
    assert updated.facility_id == magetan
    assert updated.changes["facility_class"] == ["IIB", "IIA"]
    assert "slug" not in updated.changes


def test_a_facility_form_with_mistakes_changes_nothing(admin):
    before = db.session.scalar(select(func.count(Facility.id)))
    duplicate = dict(NAMLEA, name="Rutan Kelas IIB Banjarnegara")
    response = post_form(admin, "/admin/facilities/new", duplicate, form_page="/admin/facilities")
    assert response.status_code == 200
    assert "A facility with this name already exists" in text_of(response)

    response = post_form(admin, "/admin/facilities/new", dict(NAMLEA, province="", timezone="UTC"))
    assert response.status_code == 200
    assert text_of(response).count("This field is required") == 1
    assert "Not a valid choice" in text_of(response)
    assert db.session.scalar(select(func.count(Facility.id))) == before
    assert audit_entries("create", "facility") == []


# --- Accounts and roles -------------------------------------------------------------------------


def reset_path(email):
    message = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.recipient == email)
    ).one()
    return re.search(r"https?://[^/\s]+(/password/reset/\S+)", message.body).group(1)


def test_a_new_staff_member_sets_a_password_and_reaches_their_back_office(app, admin, facilities):
    magetan = facilities["magetan"]
    response = post_form(
        admin,
        "/admin/users/new",
        {
            "email": "Wulan.Sari@example.id",
            "name": "Wulan Sari",
            "phone": "0812-3300-4455",
            "role": "staff",
            "facility": str(magetan),
        },
    )
    assert response.status_code == 302
    wulan = db.session.scalar(select(User).where(User.email == "wulan.sari@example.id"))
    assert {(g.role, g.facility_id) for g in wulan.grants} == {(Role.STAFF, magetan)}
    assert wulan.phone == "0812-3300-4455"

    newcomer = app.test_client()
    path = reset_path("wulan.sari@example.id")
    chosen = "keset-perca-magetan-7"
    response = post_form(newcomer, path, {"password": chosen, "confirm": chosen})
    assert response.status_code == 302
    login(newcomer, "wulan.sari@example.id", chosen)
    office = newcomer.get(f"/office/{magetan}/")
    assert office.status_code == 200
    assert "Rutan Kelas IIB Magetan" in office.get_data(as_text=True)
    assert newcomer.get(f"/office/{facilities['banjarnegara']}/").status_code == 404

    [created] = audit_entries("create", "user_account")
    assert created.changes["email"] == [None, "wulan.sari@example.id"]
    assert "password_hash" not in created.changes
    [granted] = audit_entries("grant", "role_grant")
    assert granted.facility_id == magetan


def test_an_account_email_is_used_once(admin, facilities):
    response = post_form(
        admin,
        "/admin/users/new",
        {
            "email": "STAFF.magetan@example.id",
            "name": "Staf Magetan",
            "phone": "081233004455",
            "role": "staff",
            "facility": str(facilities["magetan"]),
        },
    )
    assert response.status_code == 200
    assert "An account with this email already exists" in text_of(response)
    assert db.session.scalar(select(func.count(OutboxMessage.id))) == 0


def test_admin_grants_finance_for_all_facilities(admin, users, facilities):
    user_id = users["finance_banjarnegara"].id
    response = post_form(
        admin,
        f"/admin/users/{user_id}/roles",
        {"role": "finance", "facility": ""},
        form_page=f"/admin/users/{user_id}",
    )
    assert response.status_code == 302
    assert grants_of("finance.banjarnegara@example.id") == {
        (Role.FINANCE, facilities["banjarnegara"]),
        (Role.FINANCE, None),
    }
    [granted] = audit_entries("grant", "role_grant")
    assert granted.facility_id is None
    page = text_of(admin.get(f"/admin/users/{user_id}"))
    assert "all facilities (regional office)" in page


def test_revoking_the_staff_role_closes_the_back_office(app, admin, users, facilities):
    magetan = facilities["magetan"]
    staff = app.test_client()
    login(staff, "staff.magetan@example.id")
    assert staff.get(f"/office/{magetan}/").status_code == 200

    user = users["staff_magetan"]
    grant_id = user.grants[0].id
    response = post_form(
        admin,
        f"/admin/users/{user.id}/roles/revoke",
        {"grant": str(grant_id)},
        form_page=f"/admin/users/{user.id}",
    )
    assert response.status_code == 302
    assert grants_of("staff.magetan@example.id") == set()
    assert db.session.get(RoleGrant, grant_id) is None
    assert staff.get(f"/office/{magetan}/").status_code == 404

    [revoked] = audit_entries("revoke", "role_grant")
    assert revoked.facility_id == magetan
    assert revoked.entity_id == grant_id
    assert revoked.changes["role"] == ["staff", None]


def test_a_grant_the_rules_forbid_is_a_form_error(admin, users, facilities):
    user_id = users["staff_magetan"].id
    url = f"/admin/users/{user_id}/roles"
    attempts = {
        "This account already has that role": {"role": "staff", "facility": facilities["magetan"]},
        "Staff work in one facility": {"role": "staff", "facility": ""},
        "does not belong to a facility": {"role": "admin", "facility": facilities["magetan"]},
    }
    for message, data in attempts.items():
        response = post_form(admin, url, data, form_page=f"/admin/users/{user_id}")
        assert response.status_code == 200, message
        assert message in text_of(response)
    assert grants_of("staff.magetan@example.id") == {(Role.STAFF, facilities["magetan"])}
    assert audit_entries("grant", "role_grant") == []


def test_a_deactivated_account_can_no_longer_sign_in(app, admin, users):
    staff = app.test_client()
    login(staff, "staff.banjarnegara@example.id")
    user_id = users["staff_banjarnegara"].id

    response = post_form(
        admin, f"/admin/users/{user_id}/deactivate", form_page=f"/admin/users/{user_id}"
    )
    assert response.status_code == 302
    assert staff.get("/office/").status_code == 302  # the open session ended
    refused = post_form(
        staff, "/login", {"email": "staff.banjarnegara@example.id", "password": "x" * 12}
    )
    assert refused.status_code == 200
    with pytest.raises(AssertionError, match="login failed"):
        login(staff, "staff.banjarnegara@example.id")
    assert "deactivated" in text_of(admin.get("/admin/users?q=banjarnegara"))
    [entry] = audit_entries("deactivate", "user_account")
    assert entry.changes["active"] == [True, False]

    post_form(admin, f"/admin/users/{user_id}/reactivate", form_page=f"/admin/users/{user_id}")
    login(staff, "staff.banjarnegara@example.id")
    assert len(audit_entries("reactivate", "user_account")) == 1


def test_an_admin_cannot_lock_themselves_out(admin, users):
    me = users["admin"]
    response = post_form(admin, f"/admin/users/{me.id}/deactivate", form_page="/admin/users")
    assert response.status_code == 409
    assert "You cannot deactivate your own account" in text_of(response)
    response = post_form(
        admin,
        f"/admin/users/{me.id}/roles/revoke",
        {"grant": str(me.grants[0].id)},
        form_page="/admin/users",
    )
    assert response.status_code == 409
    assert "You cannot remove your own last admin role" in text_of(response)
    assert grants_of("admin@example.id") == {(Role.ADMIN, None)}
    assert db.session.get(User, me.id).active
    assert admin.get("/admin/").status_code == 200


def test_users_are_found_by_email_or_name(admin, users):
    page = text_of(admin.get("/admin/users?q=Magetan"))
    assert "staff.magetan@example.id" in page
    assert "Facility staff · Rutan Kelas IIB Magetan" in page
    assert "buyer@example.id" not in page
    everyone = text_of(admin.get("/admin/users"))
    assert "finance.regional@example.id" in everyone and "Administrator" in everyone


# --- Who may enter ------------------------------------------------------------------------------


def admin_urls(app, ids):
    """(method, url) of every admin route, so that a route added later is covered too."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/admin"):
            url = rule.build({arg: ids[arg] for arg in rule.arguments})[1]
            found += [(m, url) for m in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    assert len(found) >= 12
    return found


@pytest.mark.parametrize(
    "email", ["buyer@example.id", "staff.magetan@example.id", "finance.regional@example.id"]
)
def test_only_admins_see_any_admin_page(app, client, users, facilities, email):
    ids = {"facility_id": facilities["magetan"], "user_id": users["buyer"].id}
    login(client, email)
    token = csrf_token(client, "/account")
    before = db.session.scalar(select(func.count(AuditEntry.id)))
    for method, url in admin_urls(app, ids):
        response = client.open(url, method=method, data={"csrf_token": token, "grant": "1"})
        assert response.status_code == 404, (email, method, url)
    assert db.session.scalar(select(func.count(AuditEntry.id))) == before


def test_anonymous_visitors_are_sent_to_login(app, client, users, facilities):
    ids = {"facility_id": facilities["magetan"], "user_id": users["buyer"].id}
    token = csrf_token(client, "/login")
    for method, url in admin_urls(app, ids):
        response = client.open(url, method=method, data={"csrf_token": token})
        assert response.status_code == 302, (method, url)
        assert "/login?next=" in response.headers["Location"]


def test_a_post_without_its_token_is_refused(admin, users):
    buyer = users["buyer"]
    assert admin.post(f"/admin/users/{buyer.id}/deactivate").status_code == 400
    assert admin.post("/admin/facilities/new", data=NAMLEA).status_code == 400
    assert db.session.get(User, buyer.id).active
    assert db.session.scalar(select(Facility).where(Facility.name == NAMLEA["name"])) is None


# --- The audit log ------------------------------------------------------------------------------


def test_every_change_shows_in_the_admin_audit_log(admin, users, facilities):
    post_form(admin, "/admin/facilities/new", NAMLEA)
    buyer_two = users["buyer_two"]
    post_form(admin, f"/admin/users/{buyer_two.id}/deactivate", form_page="/admin/users")
    namlea = db.session.scalar(select(Facility.id).where(Facility.name == NAMLEA["name"]))

    everything = text_of(admin.get("/admin/audit"))
    assert f"create facility #{namlea}" in everything
    assert f"deactivate user_account #{buyer_two.id}" in everything
    assert everything.index("deactivate user_account") < everything.index("create facility")

    namlea_only = text_of(admin.get(f"/admin/audit?facility={namlea}"))
    assert f"create facility #{namlea}" in namlea_only
    assert "deactivate user_account" not in namlea_only
    assert admin.get("/admin/audit?facility=namlea").status_code == 400
    assert admin.get("/admin/audit?facility=999999").status_code == 404


def test_the_overview_counts_what_is_there(admin, users, facilities):
    page = text_of(admin.get("/admin/"))
    assert re.search(r"Facilities 4\b", page)
    assert re.search(r"Users and roles 7\b", page)
