"""PNG of a trace: angle, rate, state and button against time."""

import matplotlib

matplotlib.use("Agg")  # no display needed (CI, headless machines)
import matplotlib.pyplot as plt

from sim.checks import ANGLE_CAP_DEG, RATE_CAP_DPS

STATE_ORDER = (
    "SAFE_STOP", "BLIND_RETURN", "RECOVERING", "STARTUP", "HOME", "RETURNING",
    "EMERGENCY_RETURN", "ROCKING", "HOLDING", "DESCENDING",
)


def plot_trace(trace, path, title=""):
    t = trace["t_s"]
    fig, (ax_angle, ax_rate, ax_state, ax_button) = plt.subplots(
        4, 1, sharex=True, figsize=(11, 9), gridspec_kw={"height_ratios": [3, 2, 2, 1]}
    )
    ax_angle.plot(t, trace["angle_deg"], label="angle (true)", lw=1.4)
    ax_angle.plot(t, trace["angle_est_deg"], label="angle (estimated)", lw=0.8, ls="--")
    ax_angle.plot(t, trace["target_deg"], label="target", lw=0.8, color="grey", alpha=0.7)
    ax_angle.axhline(ANGLE_CAP_DEG, color="red", lw=0.8, ls=":", label="cap")
    ax_angle.set_ylabel("angle [deg]\n+90 = head-down")
    ax_angle.legend(loc="upper right", fontsize=8)
    ax_angle.grid(alpha=0.3)

    ax_rate.plot(t, trace["rate_dps"], lw=1.0, label="rate (true)")
    for sign in (1, -1):
        ax_rate.axhline(sign * RATE_CAP_DPS, color="red", lw=0.8, ls=":")
    ax_rate.set_ylabel("rate [deg/s]")
    ax_rate.grid(alpha=0.3)

    levels = {name: i for i, name in enumerate(STATE_ORDER)}
    ax_state.step(t, [levels.get(s, -1) for s in trace["state"]], where="post", lw=1.2)
    ax_state.set_yticks(range(len(STATE_ORDER)))
    ax_state.set_yticklabels(STATE_ORDER, fontsize=7)
    ax_state.grid(alpha=0.3)

    ax_button.step(t, trace["button_held"], where="post", color="green", lw=1.2)
    ax_button.set_yticks([0, 1])
    ax_button.set_yticklabels(["released", "held"], fontsize=8)
    ax_button.set_xlabel("time [s]")
    fault = trace["fault"]
    faults = [(t[i], fault[i]) for i in range(1, len(t)) if fault[i] and fault[i] != fault[i - 1]]
    for ti, f in faults:
        for ax in (ax_angle, ax_rate, ax_state, ax_button):
            ax.axvline(ti, color="orange", lw=0.8)
        ax_angle.annotate(f, (ti, ANGLE_CAP_DEG), fontsize=7, color="darkorange", rotation=90,
                          va="top")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
