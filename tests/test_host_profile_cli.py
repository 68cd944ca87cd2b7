"""`python -m host_tools profile new | check | push`, the `sim` shortcut and the
`inversion-table` console script.

profile new asks every clearance question the firmware's rules know (no
question missing), takes answers from a file or from the keyboard (re-asking
on a reply that is not yes or no); a contraindication or no doctor's
approval is recorded and the firmware then refuses inversion; bad answers
name the key. push writes profile.json to the virtual board and refuses to
overwrite a board's own profile (its history) without --replace."""

import json
import subprocess
import sys
import tomllib

import pytest

from firmware import therapy as T
from host_tools import deploy as D
from host_tools import profile_cmd
from host_tools.__main__ import COMMANDS
from host_tools.__main__ import main as cli_main
from host_tools.virtual_board import VirtualBoard

TIMEOUT_S = 60
CLEAR = dict(T.CLEARANCE)


def answers_file(tmp_path, **changes):
    path = tmp_path / "answers.json"
    path.write_text(json.dumps({**CLEAR, **changes}))
    return path


def cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "host_tools", *args], capture_output=True,
                          text=True, timeout=TIMEOUT_S, check=False, cwd=D.REPO, input=stdin)


def test_every_clearance_key_has_a_question_and_the_guidance_ones_are_there():
    keys = [k for k, _ in T.CLEARANCE]
    assert sorted(profile_cmd.QUESTIONS) == sorted(keys)
    for key in ("doctor_approved", "heart_disease", "high_blood_pressure", "glaucoma",
                "pregnancy", "recent_surgery"):
        assert key in keys
    assert all(q.endswith("?") for q in profile_cmd.QUESTIONS.values())


def test_new_from_answers_writes_a_cleared_profile(tmp_path, capsys):
    out = tmp_path / "profile.json"
    code = cli_main(["profile", "new", "--out", str(out), "--answers",
                     str(answers_file(tmp_path)), "--max-angle-deg", "45"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "cleared: next session: 15 deg" in printed
    profile = T.validate_profile(json.loads(out.read_text()))
    assert profile["clearance"]["doctor_approved"] is True
    assert profile["clearance"]["answered_s"] > 1.7e9
    assert profile["settings"]["max_angle_deg"] == 45
    assert profile["progress"]["level_deg"] == 15 and profile["history"] == []
    assert T.session_program(profile, None)[0]["target_angle_deg"] == 15.0


@pytest.mark.parametrize("changes, named", [
    ({"high_blood_pressure": True}, "contraindication recorded (high_blood_pressure)"),
    ({"glaucoma": True, "pregnancy": True}, "contraindication recorded (glaucoma, pregnancy)"),
    ({"doctor_approved": False}, "no doctor's approval recorded"),
])
def test_a_contraindication_is_recorded_and_the_firmware_refuses(tmp_path, capsys, changes,
                                                                 named):
    out = tmp_path / "p.json"
    assert cli_main(["profile", "new", "--out", str(out), "--answers",
                     str(answers_file(tmp_path, **changes))]) == 0
    assert "NOT CLEARED: %s" % named in capsys.readouterr().out
    profile = json.loads(out.read_text())
    assert all(profile["clearance"][k] == v for k, v in changes.items())
    program, reason = T.session_program(profile, 1767600000)
    assert program is None and named in reason


def test_bad_answers_name_the_key_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "p.json"
    path = tmp_path / "a.json"
    path.write_text(json.dumps({k: v for k, v in CLEAR.items() if k != "glaucoma"}))
    assert cli_main(["profile", "new", "--out", str(out), "--answers", str(path)]) == 1
    assert "answers.glaucoma is not answered (true or false)" in capsys.readouterr().err
    path.write_text(json.dumps({**CLEAR, "heart_disease": "no"}))
    assert cli_main(["profile", "new", "--out", str(out), "--answers", str(path)]) == 1
    assert "answers.heart_disease must be true or false, got 'no'" in capsys.readouterr().err
    path.write_text(json.dumps({**CLEAR, "smoker": False}))
    assert cli_main(["profile", "new", "--out", str(out), "--answers", str(path)]) == 1
    assert "answers: unknown key 'smoker'" in capsys.readouterr().err
    assert cli_main(["profile", "new", "--out", str(out), "--answers", str(path),
                     "--max-angle-deg", "120"]) == 1
    assert not out.exists()


def test_new_refuses_to_overwrite_a_profile_without_force(tmp_path, capsys):
    out = tmp_path / "p.json"
    out.write_text("{}")
    assert cli_main(["profile", "new", "--out", str(out), "--answers",
                     str(answers_file(tmp_path))]) == 2
    assert "exists" in capsys.readouterr().err and out.read_text() == "{}"
    assert cli_main(["profile", "new", "--out", str(out), "--answers",
                     str(answers_file(tmp_path)), "--force"]) == 0


def test_new_asks_each_question_at_the_keyboard(tmp_path):
    out = tmp_path / "p.json"
    replies = ["maybe", "y"] + ["n"] * (len(T.CLEARANCE) - 1)
    done = cli("profile", "new", "--out", str(out), stdin="\n".join(replies) + "\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("[y/n]") == len(T.CLEARANCE) + 1  # asked again after "maybe"
    assert "please answer y or n" in done.stdout
    assert "cleared" in done.stdout and "Traceback" not in done.stderr
    assert json.loads(out.read_text())["clearance"] == {
        **CLEAR, "answered_s": json.loads(out.read_text())["clearance"]["answered_s"]}
    # Stopped half-way (end of input): nothing written, status 2.
    out2 = tmp_path / "p2.json"
    done = cli("profile", "new", "--out", str(out2), stdin="y\nn\n")
    assert done.returncode == 2 and "no answer to:" in done.stderr and not out2.exists()


def test_check_shows_the_next_session_or_why_not(tmp_path, capsys):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(T.new_profile(CLEAR)))
    assert cli_main(["profile", "check", str(path)]) == 0
    assert "next session: 15 deg" in capsys.readouterr().out
    path.write_text(json.dumps({"settings": {"rest_s": 10}}))
    assert cli_main(["profile", "check", str(path)]) == 1
    assert "profile.settings.rest_s = 10 is outside the allowed range 30 .. 600 s" in (
        capsys.readouterr().err)


def test_push_writes_the_profile_and_keeps_the_boards_own(tmp_path, capsys):
    first = tmp_path / "first.json"
    first.write_text(json.dumps(T.new_profile(CLEAR)))
    other = tmp_path / "other.json"
    other.write_text(json.dumps(T.new_profile(CLEAR, {"max_angle_deg": 30})))
    with VirtualBoard() as vb:
        assert cli_main(["profile", "push", str(first), "--port", vb.port]) == 0
        assert "wrote profile.json" in capsys.readouterr().out
        on_board = json.loads((vb.root / "profile.json").read_text())
        assert T.validate_profile(on_board) == T.validate_profile(json.loads(first.read_text()))
        # The board has its own now (it records sessions in it): not overwritten...
        assert cli_main(["profile", "push", str(other), "--port", vb.port]) == 1
        assert "--replace" in capsys.readouterr().err
        assert json.loads((vb.root / "profile.json").read_text()) == on_board
        # ...unless asked; and a bad profile is never pushed.
        assert cli_main(["profile", "push", str(other), "--port", vb.port, "--replace"]) == 0
        assert json.loads((vb.root / "profile.json").read_text())["settings"][
            "max_angle_deg"] == 30
        bad = tmp_path / "bad.json"
        bad.write_text('{"clearance": 1}')
        assert cli_main(["profile", "push", str(bad), "--port", vb.port, "--replace"]) == 1
        assert not list(vb.root.glob("*.tmp"))


# --- sim shortcut and console script ---------------------------------------------------------


def test_sim_shortcut_forwards_to_the_simulator(tmp_path):
    scenario = tmp_path / "s.toml"
    scenario.write_text('duration_s = 3.0\n[user]\nmass_kg = 80.0\nheight_m = 1.78\n'
                        '[profile]\nclearance = "cleared"\n')
    trace = tmp_path / "t.csv"
    done = cli("sim", "run", str(scenario), "--trace", str(trace))
    assert done.returncode == 0, done.stdout + done.stderr
    assert trace.read_text().count("\n") == 301 and "limits: all safety checks passed" in (
        done.stdout)
    scenario.write_text("duration_s = 3.0\n")
    done = cli("sim", "run", str(scenario), "--trace", str(trace))
    assert done.returncode == 2 and "the [user] table is missing" in done.stderr
    assert cli("sim", "walk").returncode == 2


def test_the_console_script_is_the_host_tools_main():
    with open(D.REPO / "pyproject.toml", "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert scripts["inversion-table"] == "host_tools.__main__:main"
    assert {"deploy", "config", "profile", "sim"} <= set(COMMANDS)
