"""Frames carry only the views the page shows: a `ready` with `warps: false` (the warp
panel is out of sight) gets a frame without warps, and the warps come back, at once, when
the page asks for them again."""

from __future__ import annotations

import pytest


def test_a_frame_without_warps_when_the_page_does_not_show_them(connect, settings):
    from app.protocol import protocol_for

    frame_model = protocol_for(settings).Frame
    with connect() as session:
        full = session.frame()
        assert len(full["warps"]) == 2
        session.command("step", count=5)
        session.send({"type": "ready", "warps": False})
        lean = session.next_frame()
        assert lean["warps"] is None and lean["step"] == 5
        frame_model.model_validate(lean)
        # the other views are all there, the same as with the warps
        assert lean["surface"]["values"]["shape"] == full["surface"]["values"]["shape"]
        assert [u["values"]["shape"] for u in lean["units"]] == [
            u["values"]["shape"] for u in full["units"]]
        # shown again: a frame comes although nothing changed, with the warps
        session.send({"type": "ready", "warps": True})
        again = session.next_frame()
        assert again["step"] == 5 and len(again["warps"]) == 2
        # and nothing more until something changes
        session.send({"type": "ready"})
        with pytest.raises(TimeoutError):
            session.receive(timeout=0.4)


def test_the_surface_is_the_same_with_and_without_the_warps(connect):
    with connect() as session:
        session.command("step", count=30)
        session.send({"type": "ready", "warps": False})
        lean = session.next_frame()
        session.send({"type": "ready", "warps": True})
        full = session.next_frame()
        assert lean["surface"]["values"]["data"] == full["surface"]["values"]["data"]
        assert [u["values"]["data"] for u in lean["units"]] == [
            u["values"]["data"] for u in full["units"]]


def test_warps_must_be_a_boolean(connect):
    with connect() as session:
        error = session.raw('{"type": "ready", "warps": "no"}')
        assert error["type"] == "error" and error["field"] == "warps"
        assert session.frame()["warps"] is not None  # the session goes on
