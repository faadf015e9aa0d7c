"""Each attack of the security suite, against the real app: every check finds nothing.

`test_weakened_builds.py` runs the same checks against builds with one defence removed, and
shows that each check then reports the attack getting through.
"""

from __future__ import annotations

from .checks_access import check_buyer_isolation, check_no_wbp_identity
from .checks_http import check_cookies, check_csrf, check_rate_limits, check_security_headers
from .checks_input import check_mass_assignment, check_sql_injection, check_uploads, check_xss


def test_every_page_sends_the_security_headers(world):
    assert check_security_headers(world) == []


def test_session_and_remember_cookies_are_secure_httponly_and_lax_in_production(world):
    assert check_cookies(world) == []


def test_every_state_changing_route_refuses_a_request_without_its_csrf_token(world):
    assert check_csrf(world) == []


def test_sign_in_and_the_api_are_rate_limited(world):
    assert check_rate_limits(world) == []


def test_script_typed_into_any_field_is_shown_as_text(world):
    assert check_xss(world) == []


def test_sql_in_any_query_parameter_is_just_a_value(world):
    assert check_sql_injection(world) == []


def test_fields_a_form_does_not_have_are_ignored(world):
    assert check_mass_assignment(world) == []


def test_hostile_uploads_are_refused_or_kept_without_their_payload(world):
    assert check_uploads(world) == []


def test_a_buyer_reaches_nothing_of_another_buyer(world):
    assert check_buyer_isolation(world) == []


# Staff of one facility against another's objects: tests/test_access.py walks every back-office
# and admin route against the real app. `check_facility_isolation` is that walk as a check, and
# runs only against a weakened build, in test_weakened_builds.py.


def test_no_page_document_or_api_answer_a_buyer_reaches_names_a_wbp(world):
    assert check_no_wbp_identity(world) == []
