"""The process's training loop (app.scheduler.TrainingLoop): sessions trained together end
where their own solo runs would, frames report the speed achieved, and a session whose
client stops asking for frames (a background tab, a client that never acks) idles."""

from __future__ import annotations

import time

import numpy as np
import pytest

import app.session
from app.settings import Settings
from engine.spec import Config
from engine.training import Trainer

IDLE_AFTER_S = 0.4


@pytest.fixture
def settings():
    return Settings(max_sessions=8, idle_after_s=IDLE_AFTER_S)


def exported_step(session) -> int:
    return session.command("export")["step"]


def test_sessions_trained_together_end_where_their_solo_runs_would(connect, monkeypatch):
    stacked_sizes: list[int] = []
    original = app.session.train_stacked

    def counting(trainers, *args, **kwargs):
        stacked_sizes.append(len(trainers))
        return original(trainers, *args, **kwargs)

    monkeypatch.setattr(app.session, "train_stacked", counting)
    with connect() as a, connect() as b, connect() as c:
        b.command("patch", op="set", path="training.learning_rate", value=0.1)
        config = c.hello["config"]
        config["model"]["layers"] = [{"units": 3, "activation": "tanh"}]
        c.command("configure", config=config)  # another shape: it trains alone
        for session in (a, b, c):
            session.command("play", speed=3000)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # the clients ask for frames, as pages do
            for session in (a, b, c):
                session.frame()
        exports = []
        for session in (a, b, c):
            session.command("pause")
            exports.append(session.command("export"))
    assert stacked_sizes and max(stacked_sizes) == 2  # a and b as one run, c alone
    for export in exports:
        assert export["step"] > 100
        solo = Trainer(Config.from_dict(export["config"]))
        for _ in range(export["step"]):
            solo.step()
        for name, values in solo.model.state_dict().items():
            np.testing.assert_allclose(export["weights"][name], values, rtol=1e-9, atol=1e-12,
                                       err_msg=name)


def test_frames_report_the_speed_set_and_the_speed_achieved(connect):
    with connect() as session:
        session.command("play", speed=400)
        frame = session.frame()
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:
            frame = session.frame()
        assert frame["speed"] == 400.0
        # measured over the last seconds of play: never above the speed set (speed itself
        # is the benchmark's business, not a test's)
        assert 0 < frame["achieved_speed"] <= 400 * 1.3
        session.command("pause")
        assert session.frame()["achieved_speed"] is None


def test_a_client_that_stops_asking_for_frames_idles_until_it_asks_again(connect):
    with connect() as session:
        session.command("play", speed=2000)
        first = session.frame()
        assert first["playing"] is True
        # no `ready` from here on, as from a tab in the background
        time.sleep(IDLE_AFTER_S + 0.3)
        idle_at = exported_step(session)
        time.sleep(0.5)
        assert exported_step(session) == idle_at  # idle: no training, nothing to send
        assert idle_at > first["step"]  # it trained until the rule applied
        # visible again: it asks, gets the newest state, and training resumes
        frame = session.frame()
        assert frame["playing"] is True and frame["step"] == idle_at
        time.sleep(0.3)
        assert session.frame()["step"] > idle_at


def test_a_client_that_never_acks_costs_nothing_after_a_moment(connect):
    with connect() as session, connect() as other:
        session.command("play", speed=2000)  # and never says `ready`
        other.command("play", speed=2000)
        time.sleep(IDLE_AFTER_S + 0.3)
        stopped_at = exported_step(session)
        for _ in range(5):  # the other session, which asks, goes on training meanwhile
            other.frame()
            time.sleep(0.1)
        assert exported_step(session) == stopped_at
        assert stopped_at > 0
        before = other.frame()["step"]
        time.sleep(0.2)
        assert other.frame()["step"] > before


def test_a_tick_out_of_time_stops_a_group_together_and_rotates_the_groups():
    """Beyond capacity every session of a group gets the same steps, and no group is always
    the one left out (``app.session.train_sessions``, what each tick runs)."""
    from app.session import Session, train_sessions

    def session(name: str, layers: list[int], rate: float = 0.03) -> Session:
        made = Session(name, Settings())
        config = made.config.copy()
        config.model.layers = [type(config.model.layers[0])(units=u) for u in layers]
        config.training.learning_rate = rate
        made.trainer = Trainer(config)
        made.playing = True
        return made

    group = [session(f"a{i}", [4, 2], rate=0.01 * (i + 1)) for i in range(4)]
    others = [session("b", [3]), session("c", [5, 5])]
    entries = [(s, 50) for s in group + others]
    trained: list[list[int]] = []
    for rotation in range(3):
        results = train_sessions(entries, budget_s=0.0, rotation=rotation)  # out of time
        trained.append([done for done, _ in results])
    for counts in trained:
        assert len(set(counts[:4])) == 1  # the group's sessions always alike
        assert sum(1 for done in (counts[0], counts[4], counts[5]) if done) == 1  # one part
    # over three ticks each of the three parts (the group, b, c) went first once
    firsts = [max(range(3), key=lambda k: (counts[0], counts[4], counts[5])[k])
              for counts in trained]
    assert sorted(firsts) == [0, 1, 2]
