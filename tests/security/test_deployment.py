"""The app as deployed: under gunicorn behind a proxy (HSTS, the visitor's address), and the
audit of the pinned dependencies. Neither needs the test database: these run once, not per database.
"""

from __future__ import annotations

import pytest

from .checks_deployment import (
    AuditUnavailable,
    check_behind_proxy,
    check_dependency_audit,
    pinned_requirements,
    read_audit,
)


def test_behind_the_proxy_https_gets_hsts_and_each_visitor_has_their_own_sign_in_limit(tmp_path):
    assert check_behind_proxy(tmp_path) == []


def audited(requirements, workdir):
    """The audit's problems; a skip, saying why, when the vulnerability service is unreachable."""
    try:
        return check_dependency_audit(requirements, workdir)
    except AuditUnavailable as reason:
        pytest.skip(f"vulnerability service unreachable: {reason}")


def test_no_pinned_dependency_has_a_known_vulnerability(tmp_path):
    assert audited(pinned_requirements(), tmp_path) == []


JINJA_2_10_REPORT = {
    "dependencies": [
        {"name": "flask", "version": "3.1.3", "vulns": []},
        {
            "name": "jinja2",
            "version": "2.10",
            "vulns": [{"id": "GHSA-462w-v97r-4m45", "fix_versions": ["2.10.1"]}],
        },
    ],
    "fixes": [],
}
UNREACHABLE_REPORT = {
    "dependencies": [
        {"name": "flask", "skip_reason": "Dependency not found on PyPI and could not be audited"},
        {"name": "jinja2", "skip_reason": "Dependency not found on PyPI and could not be audited"},
    ],
    "fixes": [],
}


def test_reading_the_report_finds_vulnerabilities_and_never_calls_unaudited_clean():
    assert read_audit(JINJA_2_10_REPORT) == ["jinja2 2.10: GHSA-462w-v97r-4m45 (fixed in 2.10.1)"]
    with pytest.raises(AuditUnavailable, match="none of 2 dependencies audited"):
        read_audit(UNREACHABLE_REPORT)
    partly = {
        "dependencies": [
            *JINJA_2_10_REPORT["dependencies"][:1],
            UNREACHABLE_REPORT["dependencies"][1],
        ]
    }
    assert read_audit(partly) == [
        "jinja2: not audited: Dependency not found on PyPI and could not be audited"
    ]


WEAKENED = {
    # The proxy is trusted no more (FORWARDED_ALLOW_IPS names another host): its
    # X-Forwarded-Proto and X-Forwarded-For are ignored, so HTTPS visitors get no HSTS and all
    # visitors share the proxy's address and its sign-in limit.
    "behind-proxy-untrusted": lambda workdir: check_behind_proxy(
        workdir, FORWARDED_ALLOW_IPS="192.0.2.10"
    ),
    # A pin moved back to a release with published vulnerabilities (audited alone: the other
    # pins are the real test's).
    "dependency-audit": lambda workdir: audited(["Jinja2==2.10"], workdir),
}


@pytest.mark.parametrize("check", list(WEAKENED))
def test_the_check_fails_against_a_weakened_build(check, tmp_path):
    problems = WEAKENED[check](tmp_path)
    print("\n".join(problems))  # what the check saw, for whoever reads a failure
    assert problems, f"the {check} check found nothing wrong with its weakened build"
