"""The load benchmark's own arithmetic: samples read, percentiles taken, targets judged."""

import re

from bench.load import (
    Endpoint,
    Run,
    Sample,
    endpoint,
    lua_string,
    percentile,
    verdicts,
    wrk_samples,
)


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile([7.0], 0.99) == 7


def test_the_visitors_script_output_becomes_named_samples(tmp_path):
    out = tmp_path / "visits.wrk"
    out.write_text(
        "page\t1\t/\n"
        "page\t2\t/products/<slug>\n"
        "sample\t11\t200\t2500\n"  # page 1, a hit, 2.5 ms
        "sample\t22\t200\t14000\n"  # page 2, a miss
        "sample\t20\t500\t900\n"  # page 2, no cache header, an error
        "socket errors\t3\n"
    )
    samples, socket_errors = wrk_samples(out, None)
    assert socket_errors == 3
    assert samples == [
        Sample("/", 2.5, False, "hit"),
        Sample("/products/<slug>", 14.0, False, "miss"),
        Sample("/products/<slug>", 0.9, True, "none"),
    ]
    product = endpoint("/products/<slug>", samples[1:], seconds=2)
    assert (product.requests, product.failures, product.requests_per_second) == (2, 1, 1.0)
    assert product.page_cache == {"miss": 1, "none": 1}
    assert product.p99_ms == 14.0


def test_a_single_path_run_names_its_samples_by_the_path(tmp_path):
    out = tmp_path / "hello.wrk"
    out.write_text("page\t1\t/\nsample\t1\t200\t300\n")
    samples, _ = wrk_samples(out, "/")
    assert samples == [Sample("/", 0.3, False, "hit")]


def test_lua_strings_carry_any_text_as_its_utf8_bytes():
    text = 'Nusa "Tenggara" \\ Timur\n\u00e9'
    literal = lua_string(text)
    assert re.fullmatch(r'"[ -~]*"', literal)
    body = literal[1:-1]
    decoded = re.sub(rb"\\(\d{3})", lambda m: bytes([int(m[1])]), body.encode())
    assert decoded == text.encode()


def page(name: str, p99: float) -> Endpoint:
    return Endpoint(name, 100, 0, 10.0, p99 / 2, p99, p99)


def run(name: str, endpoints: list[Endpoint], rate: float = 100.0) -> Run:
    total = Endpoint("all", 100, 0, rate, 1, 1, 1)
    return Run(name, 32, 2, 10, endpoints, total, 1.0, 0.1, 0.1, 0.0, 0.0, [])


def test_a_target_missed_by_one_page_is_missed():
    runs = [
        run("mix, with page cache", [page("/products", 60), page("/products/<slug>", 101)]),
        run("mix, no page cache", [page("/products", 300), page("POST /checkout", 100)]),
        run("listing alone, with page cache, round 1", [], rate=600),
        run("hello, round 1", [], rate=1000),
        run("listing alone, no page cache, round 1", [], rate=100),
    ]
    checks = dict(verdicts(runs))
    browse = next(text for text in checks if text.startswith("mix, with page cache: browse"))
    assert not checks[browse]
    assert "/products/<slug> 101 ms" in browse
    assert checks["/products with page cache: 0.60 x hello's requests/s >= 0.5"]
    assert not checks["/products no page cache: 0.10 x hello's requests/s >= 0.5"]
    assert checks["mix, no page cache: POST /checkout p99 100 ms < 250 ms"]


def test_targets_met_by_every_page_are_met():
    runs = [
        run("mix, with page cache", [page("/", 99), page("POST /checkout", 249)]),
        run("listing alone, with page cache, round 1", [], rate=500),
        run("hello, round 1", [], rate=1000),
        run("listing alone, no page cache, round 1", [], rate=500),
    ]
    assert all(passed for _, passed in verdicts(runs))
