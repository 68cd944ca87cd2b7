"""config.json on the board: the `table`, `limits` and `program` sections.

    {"table":   {...firmware.config.Table keys...},     required
     "limits":  {...firmware.config.Limits keys...},    optional: {} = the hard caps
     "program": {...firmware.config.Program keys...}}   required

Each section is read by firmware/config.py (Table, Limits, Program), which
checks types and bounds, rejects unknown keys and names the key and its
allowed range; sections other than these three are rejected here.

`load_device_config(text)` never raises on bad input: a missing file
(text None), text that is not JSON, JSON that is not an object of objects,
an unknown section or any ConfigError gives the conservative defaults
instead, with `problems` naming what was wrong:

- program: CONSERVATIVE_PROGRAM (15 deg, a short hold, no rocking, slow) as
  soon as anything in the file is wrong: the file as a whole is suspect;
- limits: the file's `limits` if that section read cleanly, else Limits()
  (the hard caps of firmware/limits.py: nothing here can exceed them);
- table: the file's `table` if that section read cleanly (it describes the
  machine: a good home angle is better than a guessed one), else
  REFERENCE_TABLE (the simulated reference table).

Start-up code (floats and allocation are fine). Nothing in the control tick
imports it: main.py imports it once at boot and drops it from sys.modules
(`drop()`), so it costs no RAM while the controller runs.
"""

from firmware.config import ConfigError, Limits, Program, Table

CONFIG_PATH = "config.json"
SECTIONS = ("table", "limits", "program")
REQUIRED_SECTIONS = ("table", "program")

# The gentlest session: 15 deg (where the guidance starts), a one-minute
# hold, no rocking, 1 deg/s down and up, a rest at horizontal on the way up.
CONSERVATIVE_PROGRAM = {
    "target_angle_deg": 15.0,
    "hold_s": 60.0,
    "rock_amplitude_deg": 0.0,
    "rock_period_s": 10.0,
    "rock_cycles": 1,
    "descent_rate_dps": 1.0,
    "return_rate_dps": 1.0,
    "rest_angle_deg": 0.0,
    "rest_s": 30.0,
}

# The simulated reference table (sim/plant.py): home at -60 deg.
REFERENCE_TABLE = {
    "home_deg": -60.0,
    "lever_m": 0.18,
    "base_m": 0.80,
    "phi_offset_deg": 75.0,
    "noload_speed_mps": 0.035,
    "imu_mount_offset_deg": 0.0,
}


def parse_json(text, name=CONFIG_PATH):
    """(data, None) or (None, problem) for the file's text (None: no file)."""
    if text is None:
        return None, "%s: no such file on the board" % name
    if isinstance(text, (bytes, bytearray)):
        try:
            text = text.decode()
        except UnicodeError:
            return None, "%s is not UTF-8 text" % name
    import json

    try:
        data = json.loads(text)
    except ValueError as err:  # CPython's JSONDecodeError names line and column
        return None, "%s is not valid JSON: %s" % (name, err)
    return data, None


def read_sections(data, name=CONFIG_PATH):
    """Each section read separately: ({section: object}, problems).

    A section is in the result only if it read cleanly; problems name the
    section and key of everything that did not.
    """
    if not isinstance(data, dict):
        return {}, ["%s must hold a JSON object with sections %s, got %s"
                    % (name, ", ".join(SECTIONS), _type_name(data))]
    problems = []
    for key in data:
        if key not in SECTIONS:
            problems.append("%s: unknown section '%s' (allowed: %s)"
                            % (name, key, ", ".join(SECTIONS)))
    for key in REQUIRED_SECTIONS:
        if key not in data:
            problems.append("%s: the '%s' section is missing" % (name, key))
    readers = {"table": Table, "limits": Limits, "program": Program}
    got = {}
    for key in SECTIONS:
        if key not in data:
            continue
        section = data[key]
        if not isinstance(section, dict):
            problems.append("%s must be an object of keys, got %s" % (key, _type_name(section)))
            continue
        try:
            got[key] = readers[key](section)
        except ConfigError as err:
            problems.append(str(err))
    if "limits" not in data:
        got["limits"] = Limits()
    return got, problems


def _type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def load_device_config(text, name=CONFIG_PATH):
    """(program, limits, table, problems) from config.json's text (None: missing).

    problems is [] when the file is good; otherwise it names what is wrong
    and the results are the conservative defaults described above.
    """
    data, problem = parse_json(text, name)
    if problem is not None:
        return (Program(CONSERVATIVE_PROGRAM), Limits(), Table(REFERENCE_TABLE), [problem])
    got, problems = read_sections(data, name)
    if not problems:
        return got["program"], got["limits"], got["table"], []
    limits = got.get("limits")
    table = got.get("table")
    return (Program(CONSERVATIVE_PROGRAM), limits if limits is not None else Limits(),
            table if table is not None else Table(REFERENCE_TABLE), problems)


def read_device_config(path=CONFIG_PATH):
    """load_device_config() of the file at `path` (missing or unreadable: None)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        text = None  # missing (or unreadable): named as missing, defaults used
    return load_device_config(text, path)


def drop():
    """Forget this module (start-up code): its RAM is freed at the next collection."""
    import sys

    sys.modules.pop("firmware.device_config", None)
    package = sys.modules.get("firmware")
    if package is not None:
        try:
            delattr(package, "device_config")
        except AttributeError:
            pass
