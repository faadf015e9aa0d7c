"""The listing's facility filter offers the chosen province's facilities, not all of them."""

import re

import pytest

pytestmark = pytest.mark.usefixtures("demo")

HINT = "Choose a province to list its facilities."


def facility_options(client, url: str) -> tuple[list[str], list[str], str]:
    """The facility filter's option labels, the selected ones, and the page's HTML."""
    client.set_cookie("lang", "en")
    response = client.get(url)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    select = re.search(r'<select id="facility".*?</select>', html, re.DOTALL).group(0)
    options = re.findall(r"<option [^>]*>([^<]*)</option>", select)
    selected = re.findall(r"<option [^>]*selected[^>]*>([^<]*)</option>", select)
    return options, selected, html


def test_without_a_province_only_all_facilities_is_offered(client):
    options, selected, html = facility_options(client, "/products")
    assert options == ["All facilities"]
    assert selected == []
    assert HINT in html
    assert 'aria-describedby="facility-hint"' in html


def test_a_province_offers_its_own_facilities(client):
    options, _, html = facility_options(client, "/products?province=Jawa%20Tengah")
    assert options == ["All facilities", "Rutan Kelas IIB Banjarnegara"]
    assert HINT not in html


def test_the_chosen_facility_stays_chosen_without_its_province(client):
    options, selected, html = facility_options(client, "/products?facility=rutan-magetan")
    assert options == ["All facilities", "Rutan Kelas IIB Magetan"]
    assert selected == ["Rutan Kelas IIB Magetan"]
    assert "Keset kain perca" in html


def test_the_chosen_facility_is_offered_once_with_its_province(client):
    url = "/products?province=Jawa%20Timur&facility=rutan-magetan"
    options, selected, _ = facility_options(client, url)
    assert options == ["All facilities", "Rutan Kelas IIB Magetan"]
    assert selected == ["Rutan Kelas IIB Magetan"]
