"""A learner's own CSV file (issue 12): parsing and checking (app/csvdata.py), and the
`load_csv` command on a real session: the points become the data, a bad file changes
nothing, and the points travel in the export."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.csvdata import CsvError, parse_csv
from app.encoding import decode_array
from app.main import create_app
from app.settings import Settings

MOONS = "x1,x2,label\n" + "\n".join(
    f"{np.cos(t):.4f},{np.sin(t):.4f},0\n{1 - np.cos(t):.4f},{0.5 - np.sin(t):.4f},1"
    for t in np.linspace(0, np.pi, 30)
) + "\n"


def three_classes(header: bool = True) -> str:
    rng = np.random.default_rng(3)
    lines = ["a;b;class"] if header else []
    for label, (cx, cy) in enumerate([(-2, 0), (2, 0), (0, 2.5)]):
        for x, y in rng.normal([cx, cy], 0.4, size=(20, 2)):
            lines.append(f"{x:.3f};{y:.3f};{label}")
    return "\n".join(lines)


def sine_1d(rows: int = 40) -> str:
    xs = np.linspace(-3, 3, rows)
    return "\n".join(f"{x:.4f}\t{np.sin(x):.4f}" for x in xs)  # no header, tabs


# ----- parsing: good files ----------------------------------------------------------------
def test_two_features_and_a_label_with_a_header():
    parsed = parse_csv(MOONS, "classification", 5000)
    assert parsed.header == ["x1", "x2", "label"]
    assert (parsed.inputs, parsed.target, parsed.classes) == (2, "class", 2)
    assert len(parsed.rows) == 60
    assert parsed.rows[0] == [1.0, 0.0, 0.0] and parsed.rows[1] == [0.0, 0.5, 1.0]


def test_no_header_and_other_separators_blank_lines_comments_bom_and_crlf():
    text = "\ufeff# made by hand\r\n0,0,0\r\n\r\n1 , 1 , 1\r\n  2,0.5,1  \r\n"
    parsed = parse_csv(text, "classification", 5000)
    assert parsed.header is None
    assert parsed.rows == [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [2.0, 0.5, 1.0]]
    spaces = parse_csv("0 0 0\n1 1 1\n2.5e-1 -3 1\n", "classification", 5000)
    assert spaces.rows[2] == [0.25, -3.0, 1.0]
    quoted = parse_csv('"x1","x2","y"\n"1.5","2","0"\n"3","4","1"\n', "classification", 5000)
    assert quoted.header == ["x1", "x2", "y"] and quoted.rows[0] == [1.5, 2.0, 0.0]


def test_three_classes_and_one_input_regression():
    parsed = parse_csv(three_classes(), "classification", 5000)
    assert parsed.classes == 3 and parsed.header == ["a", "b", "class"]
    assert sorted({row[2] for row in parsed.rows}) == [0.0, 1.0, 2.0]
    regression = parse_csv(sine_1d(), "regression", 5000)
    assert (regression.inputs, regression.target, regression.classes) == (1, "value", 0)
    assert len(regression.rows) == 40 and len(regression.rows[0]) == 2
    two_inputs = parse_csv("x1,x2,y\n0,0,1.25\n1,2,-7.5\n", "regression", 5000)
    assert two_inputs.inputs == 2 and two_inputs.rows[1] == [1.0, 2.0, -7.5]


# ----- parsing: bad files, each with its line -----------------------------------------------
@pytest.mark.parametrize(
    ("text", "task", "line", "words"),
    [
        ("x1,x2,label\n0,0,0\n1,abc,1\n", "classification", 3, "x2 is 'abc', not a number"),
        ("0,0,0\n1,,1\n", "classification", 2, "column 2 is empty"),
        ("0,0,0\n1,1,1\n\n2,2\n", "classification", 4, "2 columns, expected 3"),
        ("0,0,0,1\n1,1,1,0\n", "classification", 1, "4 columns; classification data need 3"),
        ("x,y\n0,1\n1,0\n", "classification", 1, "one-input data can be read as regression"),
        ("0,0,0,0\n", "regression", 1, "regression data need 2 columns (x1, y) or 3"),
        ("0,0,0\n1,1,0.5\n", "classification", 2, "label 0.5 is not a class"),
        ("0,0,0\n1,1,-1\n", "classification", 2, "label -1 is not a class"),
        ("0,0,0\n1,1,12\n", "classification", 2, "integers from 0 to 9"),
        ("0,0.5\n1,inf\n", "regression", 2, "values must be finite"),
        ("0,0.5\n1,nan\n", "regression", 2, "values must be finite"),
        ("0,0.5\n3e7,1\n", "regression", 2, "beyond ±1e+06; rescale the column"),
    ],
)
def test_bad_files_name_their_line(text, task, line, words):
    with pytest.raises(CsvError) as caught:
        parse_csv(text, task, 5000)
    assert caught.value.line == line
    assert caught.value.message.startswith(f"line {line}: ")
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "holds no points (it is empty)"),
        ("# only a comment\n\n", "holds no points"),
        ("x1,x2,label\n0,0,1\n", "holds 1 point; a data set needs at least 2"),
        ("0,0,0\n1,1,0\n", "every label is 0"),
        ("0,0,1\n1,1,2\n", "no point has label 0: number the 2 classes 0 to 1"),
        ("0,0,0\n1,1,3\n2,2,1\n", "no point has label 2"),
    ],
)
def test_bad_files_as_a_whole(text, words):
    with pytest.raises(CsvError) as caught:
        parse_csv(text, "classification", 5000)
    assert caught.value.line is None
    assert words in caught.value.message


def test_too_many_rows_names_the_first_line_past_the_limit():
    text = "x1,x2,label\n" + "\n".join(f"{i},{i},{i % 2}" for i in range(30))
    assert len(parse_csv(text, "classification", 30).rows) == 30
    with pytest.raises(CsvError) as caught:
        parse_csv(text, "classification", 25)
    # the header is line 1, so point 26 is on line 27
    assert caught.value.line == 27 and caught.value.limit == 25
    assert "holds 30 points" in caught.value.message
    assert "at most 25 (BACKPROP_LAB_MAX_POINTS)" in caught.value.message


# ----- the command on a session -------------------------------------------------------------
def points_of(frame: dict) -> tuple[np.ndarray, np.ndarray, int]:
    data = frame["data"]
    return decode_array(data["x"]).T, decode_array(data["y"]), data["train"]


def test_a_file_becomes_the_sessions_points_and_trains(connect):
    with connect() as session:
        state = session.command("load_csv", text=three_classes(), task="classification",
                                name="blobs.csv")
        assert state["type"] == "state", state
        data = state["config"]["data"]
        assert (data["name"], data["inputs"], data["target"], data["classes"]) == (
            "user", 2, "class", 3)
        assert len(data["points"]) == 60
        assert state["network"]["task"] == "multiclass" and state["network"]["outputs"] == 3
        assert state["config"]["model"]["output"]["loss"] == "softmax"
        assert state["notes"][0].startswith("data: 60 points from blobs.csv (columns a, b, "
                                            "class), 3 classes:")
        first = session.frame()
        x, y, train = points_of(first)
        assert len(x) == 60 and 0 < train < 60
        assert sorted(set(np.round(y).tolist())) == [0.0, 1.0, 2.0]
        rows = np.array(data["points"])
        for point in x:  # every drawn point is one of the file's (to the frame's 16 bits)
            assert np.abs(rows[:, :2] - point).sum(axis=1).min() < 0.01
        before = first["train_loss"]
        session.command("patch", op="set", path="training.learning_rate", value=0.3)
        session.command("step", count=300)
        assert session.frame()["train_loss"] < before


def test_one_input_regression_file_draws_a_curve(connect):
    with connect() as session:
        state = session.command("load_csv", text=sine_1d(), task="regression")
        assert state["type"] == "state", state
        assert state["network"]["input_dim"] == 1 and state["network"]["task"] == "regression"
        assert state["config"]["model"]["features"] == ["x1"]
        assert state["config"]["model"]["output"]["loss"] == "squared"
        frame = session.frame()
        assert frame["surface"]["kind"] == "curve"
        x, y, _ = points_of(frame)
        assert x.shape == (40, 1)
        assert y.min() == pytest.approx(np.sin(np.linspace(-3, 3, 40)).min(), abs=1e-3)
        # points are placed by hand on class data only
        refused = session.command("add_point", x=[0.0, 0.0], label=1)
        assert refused["type"] == "error" and refused["field"] == "data.target"
        # back to a class file: two inputs again
        state = session.command("load_csv", text=MOONS, task="classification")
        assert state["network"]["input_dim"] == 2 and "x2" in state["config"]["model"]["features"]


def test_a_bad_file_is_refused_with_its_line_and_nothing_changes(connect):
    with connect() as session:
        session.command("step", count=30)
        before = session.command("export")
        bad = "x1,x2,label\n0,0,0\n1,1,1\n2,two,0\n"
        error = session.command("load_csv", text=bad, task="classification", name="mine.csv")
        assert error["type"] == "error" and error["command"] == "load_csv"
        assert (error["code"], error["field"], error["line"]) == ("rejected", "text", 4)
        assert error["message"] == "mine.csv: line 4: x2 is 'two', not a number"
        # a file whose first line has the wrong number of columns: the limit lists the counts
        error = session.command("load_csv", text="1,2,3,4\n5,6,7,8\n", task="regression")
        assert (error["code"], error["line"], error["limit"]) == ("rejected", 1, [2, 3])
        after = session.command("export")
        assert after["config"] == before["config"] and after["weights"] == before["weights"]
        assert after["step"] == before["step"]
        assert session.command("step", count=5)["step"] == before["step"] + 5


def test_too_many_rows_for_this_servers_max_points(session_on):
    with TestClient(create_app(Settings(max_points=40, command_rate=1e6,
                                        command_burst=10**6))) as client:
        with session_on(client) as session:
            error = session.command("load_csv", text=MOONS, task="classification")
            assert error["type"] == "error" and error["limit"] == 40 and error["line"] == 42
            assert "at most 40" in error["message"]
            assert session.command("load_csv", text=sine_1d(40), task="regression")[
                "type"] == "state"


def test_export_keeps_the_files_points_and_a_new_session_restores_them(connect):
    with connect() as session:
        session.command("load_csv", text=sine_1d(), task="regression", name="sine.csv")
        session.command("step", count=50)
        exported = session.command("export")
        frame = session.frame()
    assert exported["config"]["data"]["inputs"] == 1
    assert exported["config"]["data"]["target"] == "value"
    assert len(exported["config"]["data"]["points"]) == 40
    with connect() as other:
        state = other.command("configure", config=exported["config"],
                              weights=exported["weights"])
        assert state["type"] == "state" and state["config"] == exported["config"]
        restored = other.frame()
        assert restored["train_loss"] == pytest.approx(frame["train_loss"], rel=1e-9)
        for original, copy in zip(points_of(frame), points_of(restored)):
            np.testing.assert_array_equal(original, copy)


def test_files_travel_within_the_message_limit_and_the_rate_limit(session_on):
    settings = Settings(max_message_bytes=2048, command_rate=1, command_burst=2)
    with TestClient(create_app(settings)) as client, session_on(client) as session:
        # refused unread, before its id is known: the reply has none
        session.send({"type": "load_csv", "id": 1, "text": MOONS * 3})
        error = session.reply(None)
        assert error["code"] == "too_large" and error["limit"] == 2048
        small = "0,0,0\n1,1,1\n"
        replies = [session.command("load_csv", text=small, task="classification")
                   for _ in range(3)]
        assert replies[-1]["code"] == "rate_limited"  # the burst of 2 went on the first two
        assert replies[-1]["command"] == "load_csv"


def test_load_csv_is_a_documented_command(client):
    schema = client.get("/api/schema").json()
    text = str(schema["client_messages"])
    assert "load_csv" in text and "classification" in text
    assert "line" in schema["server_messages"]["$defs"]["Error"]["properties"]
