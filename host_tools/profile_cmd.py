"""`python -m host_tools profile ...`: the user's therapy profile (profile.json).

    profile new [--out FILE] [--answers FILE] [--force] [settings...]
    profile check FILE [--now EPOCH_S]
    profile push FILE --port P [--replace]

`new` asks the medical-clearance questions the inversion guidance gives
(a doctor's approval; heart disease, high blood pressure, glaucoma, and the
other contraindications: QUESTIONS below) and writes a fresh profile: level
15 deg, no history. Any contraindication, or no doctor's approval, is
recorded as answered: the firmware then refuses inversion altogether
(firmware/therapy.py). --answers FILE takes the answers from a JSON object
{"doctor_approved": true, "heart_disease": false, ...} instead of asking
(every question must be answered; unknown keys are refused).

`check` validates a profile (the firmware's own reader) and prints the next
session's program, or why there is none.

`push` checks the profile, then writes it to the board as profile.json
(a temporary name, checked by SHA-256, renamed over the old one). The board
records every session in its profile.json (history, progression, today's
sessions): replacing it loses that, so a board that already has one is
refused unless --replace is given.

Exit status: 0 done; 1 a bad profile or answers (nothing written) or the
board failed; 2 a bad command line, an unreadable file, or a file that
exists (new without --force).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import sim  # noqa: F401  (on CPython the firmware's `micropython` comes from sim/mpshim)
from firmware import therapy
from host_tools import config_cmd
from host_tools import deploy as D

PROFILE = therapy.PROFILE_PATH

# One question per therapy.CLEARANCE key (the guidance: see a doctor first;
# no inversion with heart disease, high blood pressure or glaucoma; the
# usual contraindication lists add the rest).
QUESTIONS = {
    "doctor_approved": "Has a doctor approved inversion therapy for you?",
    "heart_disease": "Do you have heart disease, or any heart or circulatory disorder?",
    "high_blood_pressure": "Do you have high blood pressure (hypertension)?",
    "glaucoma": "Do you have glaucoma?",
    "eye_disorder": "Do you have a detached retina, conjunctivitis or another eye disorder?",
    "pregnancy": "Are you pregnant?",
    "recent_surgery": "Have you had surgery in the last six months?",
    "bone_weakness": ("Do you have osteoporosis or weak bones, a recent fracture, or a "
                      "skeletal implant (artificial joint, pins, screws)?"),
    "hernia": "Do you have a hiatal or a ventral (abdominal) hernia?",
    "ear_infection": "Do you have a middle-ear infection?",
    "anticoagulants": "Do you take anticoagulants (blood thinners)?",
    "blood_clots": "Have you had blood clots, a stroke or a transient ischaemic attack?",
    "spinal_injury": "Do you have a spinal injury?",
    "extreme_obesity": "Are you severely obese?",
}


class ProfileUsage(Exception):
    """Bad command-line input (exit status 2)."""


class ProfileBad(Exception):
    """Bad answers or profile (exit status 1)."""


def ask(questions=QUESTIONS, input_fn=input, out=sys.stdout) -> dict:
    """Each question asked until answered yes or no."""
    answers = {}
    print("Medical clearance for inversion therapy: answer each question yes or no.", file=out)
    for key, _clears in therapy.CLEARANCE:
        while True:
            try:
                reply = input_fn("%s [y/n] " % questions[key]).strip().lower()
            except EOFError:
                raise ProfileUsage("no answer to: %s" % questions[key]) from None
            if reply in ("y", "yes"):
                answers[key] = True
                break
            if reply in ("n", "no"):
                answers[key] = False
                break
            print("  please answer y or n", file=out)
    return answers


def read_answers(path: str) -> dict:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ProfileUsage("cannot read %s: %s" % (path, e.strerror)) from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ProfileBad("%s is not valid JSON: %s at line %d, column %d"
                         % (path, e.msg, e.lineno, e.colno)) from e
    try:
        return therapy.validate_clearance(data, "answers")
    except therapy.ProfileError as e:
        raise ProfileBad("%s: %s" % (path, e)) from e


def verdict(profile, now_s=None) -> list[str]:
    program, reason = therapy.session_program(profile, now_s)
    if program is None:
        return ["NO SESSION: %s" % reason]
    minutes = therapy.program_duration_s(program) / 60
    lines = ["next session: %.0f deg, hold %.0f s, %s, down %.1f / up %.1f deg/s, rest %.0f s "
             "at %.0f deg; about %.0f min in all"
             % (program["target_angle_deg"], program["hold_s"],
                "rocking +-%.0f deg" % program["rock_amplitude_deg"]
                if program["rock_amplitude_deg"] else "no rocking",
                program["descent_rate_dps"], program["return_rate_dps"], program["rest_s"],
                program["rest_angle_deg"], minutes)]
    p = profile["progress"]
    lines.append("progress: level %s deg, %d completed sessions (%d at this level)"
                 % (p["level_deg"], p["completed"], p["at_level"]))
    return lines


def _dump(profile) -> bytes:
    return (json.dumps(profile, indent=1, sort_keys=True) + "\n").encode()


def _load_profile(path: str):
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ProfileUsage("cannot read %s: %s" % (path, e.strerror)) from e
    try:
        parsed = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ProfileBad("%s is not valid JSON: %s" % (path, e)) from e
    try:
        return data, therapy.validate_profile(parsed)
    except therapy.ProfileError as e:
        raise ProfileBad("%s: %s" % (path, e)) from e


def _parsed(data: bytes):
    """The board's profile as the firmware reads it, or None if it cannot."""
    try:
        return therapy.validate_profile(json.loads(data))
    except (ValueError, UnicodeDecodeError):
        return None


# -- commands ------------------------------------------------------------------


def cmd_new(args) -> int:
    out = Path(args.out)
    if out.exists() and not args.force:
        raise ProfileUsage("%s exists (a profile holds the user's history): --force to "
                           "replace it" % out)
    answers = read_answers(args.answers) if args.answers else ask()
    settings = {}
    for key in ("max_angle_deg", "session_max_min", "utc_offset_min"):
        value = getattr(args, key)
        if value is not None:
            settings[key] = value
    try:
        profile = therapy.new_profile(answers, settings, answered_s=int(time.time()))
    except therapy.ProfileError as e:
        raise ProfileBad(str(e)) from e
    out.write_bytes(_dump(profile))
    problem = therapy.clearance_problem(profile)
    print("wrote %s" % out)
    if problem is not None:
        print("NOT CLEARED: %s. The table will refuse every inversion with this profile."
              % problem)
    else:
        print("cleared: %s" % verdict(profile)[0])
        print("copy it to the board: python -m host_tools profile push %s --port PORT" % out)
    return 0


def cmd_check(args) -> int:
    _, profile = _load_profile(args.file)
    print("%s: valid profile" % args.file)
    for line in verdict(profile, args.now):
        print("  " + line)
    return 0


def cmd_push(args) -> int:
    data, profile = _load_profile(args.file)
    data = _dump(profile)  # the normalized form the firmware writes back
    device = D.Device(args.port, timeout=args.timeout)
    current = config_cmd.read_remote(device, PROFILE)
    if current is not None and not args.replace and _parsed(current) != profile:
        print("profile push: the board already has a %s (its history and progression would "
              "be lost): --replace to overwrite it" % PROFILE, file=sys.stderr)
        return 1
    config_cmd.push_file(device, PROFILE, data, update_manifest=False)
    for line in verdict(profile):
        print("  " + line)
    print("profile push: %s is on %s; reset the board to use it" % (args.file, args.port))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="profile_command", metavar="ACTION", required=True)
    new = sub.add_parser("new", help="ask the medical-clearance questions, write a new profile")
    new.add_argument("--out", default=PROFILE, help="the profile to write (default %(default)s)")
    new.add_argument("--answers", help="JSON file of answers instead of asking")
    new.add_argument("--force", action="store_true", help="replace an existing --out file")
    new.add_argument("--max-angle-deg", dest="max_angle_deg", type=float,
                     help="the user's ceiling, 15 .. 90 deg (default 60: no full inversion)")
    new.add_argument("--session-max-min", dest="session_max_min", type=float,
                     help="longest session, 5 .. 30 min (default 15)")
    new.add_argument("--utc-offset-min", dest="utc_offset_min", type=int,
                     help="the user's time zone, minutes from UTC (for 'two sessions a day')")
    new.set_defaults(profile_run=cmd_new)
    check = sub.add_parser("check", help="check a profile and show its next session")
    check.add_argument("file")
    check.add_argument("--now", type=int, default=None,
                       help="the date as s since 1970 (default: unknown, as an unset clock)")
    check.set_defaults(profile_run=cmd_check)
    push = sub.add_parser("push", help="check a profile, then write it to a board, verified")
    push.add_argument("file")
    push.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyACM0")
    push.add_argument("--replace", action="store_true",
                      help="overwrite the board's profile (its history is lost)")
    push.add_argument("--timeout", type=float, default=D.DEFAULT_TIMEOUT_S,
                      help="seconds one mpremote run may take (default %(default)s)")
    push.set_defaults(profile_run=cmd_push)


def run(args: argparse.Namespace) -> int:
    try:
        return args.profile_run(args)
    except ProfileUsage as e:
        print("profile: %s" % e, file=sys.stderr)
        return 2
    except ProfileBad as e:
        print("profile: %s" % e, file=sys.stderr)
        return 1
    except D.DeployError as e:
        print("profile: %s" % e, file=sys.stderr)
        return 1
