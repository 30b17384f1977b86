"""Lab page /labs/conditional-statistics in a real browser: predict, run, watch the main figure
change, no console error, no serious accessibility violation."""

from __future__ import annotations

from tests.browser.lab_driver import changed, check_verdict, run_lab, serious_violations


def test_conditional_statistics_lab(page, server_url, console_errors, shots):
    first, last = run_lab(page, server_url, "conditional-statistics", "squared", "fit-plot",
                          {"steps": "400"})
    assert changed(first, last), "the main figure did not change as the network trained"
    check_verdict(page)
    shots(page, "conditional-statistics")
    assert serious_violations(page) == []
