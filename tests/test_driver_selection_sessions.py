"""The controller picks its IMU driver and H-bridge class from the board, and a
whole session runs with every combination keeping every safety check."""

import pytest

from firmware.config import Limits, Program
from firmware.controller import Controller, imu_driver
from firmware.drivers import lsm6dsox, mpu6050
from firmware.drivers.hbridge import HBridgePwmDir
from firmware.drivers.hbridge_dual_pwm import HBridgeDualPwm
from sim import checks
from sim.board import SimBoard
from sim.plant import User
from sim.runner import Run, firmware_table_config
from sim.scenario import Event, Scenario

USER = User(mass_kg=85.0, height_m=1.80)
PROGRAM = {"target_angle_deg": 40.0, "hold_s": 4.0, "rock_amplitude_deg": 5.0,
           "rock_period_s": 8.0, "rock_cycles": 1, "rest_s": 2.0}
COMBINATIONS = [(imu, bridge) for imu in ("mpu6050", "lsm6dsox")
                for bridge in ("pwm_dir", "dual_pwm")]


def controller_for(board):
    return Controller(board, Program(PROGRAM), Limits(), firmware_table_config(board))


@pytest.mark.parametrize("imu, bridge", COMBINATIONS)
def test_controller_uses_the_boards_imu_and_bridge(imu, bridge):
    board = SimBoard(USER, imu=imu, hbridge=bridge)
    ctl = controller_for(board)
    assert type(ctl.imu) is {"mpu6050": mpu6050.MPU6050, "lsm6dsox": lsm6dsox.LSM6DSOX}[imu]
    assert type(ctl.drive) is {"pwm_dir": HBridgePwmDir, "dual_pwm": HBridgeDualPwm}[bridge]


def test_estimator_scale_comes_from_the_chosen_driver_module():
    assert imu_driver("mpu6050") == (mpu6050.MPU6050, 8192, 1310)
    assert imu_driver("lsm6dsox") == (lsm6dsox.LSM6DSOX, 8197, 1143)
    board = SimBoard(USER, imu="lsm6dsox")
    ctl = controller_for(board)
    for _ in range(400):
        board.step(10_000)
        ctl.tick()
    # |a| judged against the LSM6DSOX's 8197 LSB/g: accepted as 1 g, settled, right angle.
    assert ctl.estimator.accel_norm_ok and ctl.estimator.settled
    assert ctl.estimator.angle_mdeg == pytest.approx(board.plant.angle_deg * 1000, abs=800)


def test_a_board_without_type_attributes_gets_the_mpu6050_and_pwm_dir():
    board = SimBoard(USER)
    del board.imu_type
    del board.hbridge_type
    ctl = controller_for(board)
    assert type(ctl.imu) is mpu6050.MPU6050 and type(ctl.drive) is HBridgePwmDir


def test_an_unknown_type_is_refused_naming_it():
    board = SimBoard(USER)
    board.imu_type = "bmi270"
    with pytest.raises(ValueError, match="bmi270"):
        controller_for(board)
    board = SimBoard(USER)
    board.hbridge_type = "l298"
    with pytest.raises(ValueError, match="l298"):
        controller_for(board)


def session(imu, bridge, events, duration_s, seed=2):
    program = Program(PROGRAM)
    scenario = Scenario(int(duration_s * 1000), seed, USER, program, dict(PROGRAM), events,
                        name="%s-%s" % (imu, bridge))
    board = SimBoard(USER, seed=seed, imu=imu, hbridge=bridge)
    run = Run(scenario, board=board)
    return run, run.run()


def phases(trace):
    seen = []
    for s in trace["state"]:
        if not seen or seen[-1] != s:
            seen.append(s)
    return seen


@pytest.mark.parametrize("imu, bridge", COMBINATIONS)
def test_a_whole_session_then_a_let_go_keep_every_safety_check(imu, bridge):
    # Session 1 held to the end (~120 s); session 2 let go mid-descent.
    events = [Event(1000, button="press"), Event(125_000, button="release"),
              Event(127_000, button="press"), Event(140_000, button="release")]
    run, trace = session(imu, bridge, events, 175.0)
    assert checks.all_violations(trace) == []
    assert phases(trace) == ["STARTUP", "HOME", "DESCENDING", "HOLDING", "ROCKING", "RETURNING",
                             "HOME", "DESCENDING", "EMERGENCY_RETURN", "HOME"]
    assert max(trace["angle_deg"]) == pytest.approx(45.0, abs=1.5)  # target + rocking
    assert run.board.shoot_through_events == 0
    assert set(trace["fault"]) == {""}


@pytest.mark.parametrize("fault, bridge", [("imu_disconnect", "dual_pwm"),
                                           ("imu_freeze", "pwm_dir")])
def test_lsm6dsox_lost_mid_session_goes_home_blind(fault, bridge):
    events = [Event(1000, button="press"), Event(20_000, fault=fault)]
    run, trace = session("lsm6dsox", bridge, events, 180.0)  # the blind creep home: ~145 s
    assert "BLIND_RETURN" in trace["state"] and trace["state"][-1] == "HOME"
    assert trace["fault"][-1] == "imu_lost"
    assert checks.angle_never_past_cap(trace) == []
    assert checks.rate_never_past_cap(trace) == []
    assert checks.only_allowed_transitions(trace) == []
    assert run.board.shoot_through_events == 0
