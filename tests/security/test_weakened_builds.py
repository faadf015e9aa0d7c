"""Every check of the security suite, against a build with one defence taken away: the check
must then report the attack getting through. A check that cannot fail proves nothing.

The builds are made with `monkeypatch` (see weakenings.py): the app is whole again after each.
"""

from __future__ import annotations

import pytest

from . import weakenings as weaken
from .checks_access import check_buyer_isolation, check_facility_isolation, check_no_wbp_identity
from .checks_http import check_cookies, check_csrf, check_rate_limits, check_security_headers
from .checks_input import check_mass_assignment, check_sql_injection, check_uploads, check_xss

# name -> (the check, the weakening it must notice)
WEAKENED = {
    "headers-without-hook": (check_security_headers, weaken.without_security_headers),
    "headers-csp-unsafe-inline": (check_security_headers, weaken.csp_with_unsafe_inline),
    "cookies-without-flags": (check_cookies, weaken.cookies_without_flags),
    "csrf-off": (check_csrf, weaken.csrf_off),
    "xss-autoescape-off": (check_xss, weaken.autoescape_off),
    "sql-injection-text-search": (check_sql_injection, weaken.sql_built_from_text),
    "idor-facility-guard-open": (check_facility_isolation, weaken.facility_guard_lets_everyone_in),
    "idor-buyer-guard-open": (check_buyer_isolation, weaken.buyer_guard_lets_everyone_in),
    "mass-assignment": (check_mass_assignment, weaken.forms_copy_every_field),
    "uploads-photo-check-bypassed": (check_uploads, weaken.photo_check_bypassed),
    "uploads-pdf-check-bypassed": (check_uploads, weaken.pdf_check_bypassed),
    "privacy-maker-named": (check_no_wbp_identity, weaken.maker_named_on_product_page),
    "rate-limits-off": (check_rate_limits, weaken.rate_limits_off),
}


@pytest.mark.parametrize("name", list(WEAKENED))
def test_the_check_fails_against_a_weakened_build(world, monkeypatch, name):
    check, weakening = WEAKENED[name]
    weakening(monkeypatch, world)
    problems = check(world)
    print("\n".join(problems))  # what the check saw, for whoever reads a failure
    assert problems, f"{check.__name__} found nothing wrong with the {name} build"
