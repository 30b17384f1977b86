"""A deployment with limits tighter than the default preset still opens sessions whose first
state the server itself would accept."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.main import create_app
from app.protocol import protocol_for
from app.settings import Settings


def test_a_new_session_fits_tighter_limits_than_the_default_preset(session_on) -> None:
    settings = Settings(max_points=100, max_grid=50, max_layers=1, max_units=3, max_speed=50,
                        max_warp_lines=11, max_warp_samples=21, max_sessions=2)
    protocol = protocol_for(settings)
    with TestClient(create_app(settings)) as client, session_on(client) as session:
        hello = session.hello
        assert hello["type"] == "hello"
        document = {**hello["config"], "view": hello["view"], "speed": hello["speed"]}
        protocol.Document.model_validate(document)  # raises if any value is over a limit
        assert hello["config"]["data"]["size"] == 100
        assert [layer["units"] for layer in hello["config"]["model"]["layers"]] == [3]
        assert hello["view"]["grid"] == 50 and hello["speed"] == 50
        # and it trains and draws within them
        reply = session.command("step", count=5)
        assert reply["type"] == "state" and reply["step"] == 5
        session.frame()
        assert session.last_frame_bytes > 100
