"""``RUN_DIR/curves.png``: training loss and the validation curves (TAR@1e-3, EER, teacher agreement when
distilling) over steps, redrawn after every validation (matplotlib, headless Agg backend)."""

from __future__ import annotations

from pathlib import Path

CURVES = "curves.png"


def plot_history(history: list[dict], path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    steps = [h["step"] for h in history]
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 4))
    loss = [(s, h["train_loss"]) for s, h in zip(steps, history) if h.get("train_loss") is not None]
    if loss:
        ax_loss.plot(*zip(*loss), marker=".", label="train loss (epoch mean)")
    ax_loss.set_xlabel("step")
    ax_loss.set_title("training loss")
    for key, label in (("1e-3", "val TAR@FAR 1e-3"), ("1e-2", "val TAR@FAR 1e-2")):
        pts = [(s, h["val_tar_at_far"][key]) for s, h in zip(steps, history)
               if (h.get("val_tar_at_far") or {}).get(key) is not None]
        if pts:
            ax_val.plot(*zip(*pts), marker=".", label=label)
    for key, label in (("val_eer", "val EER"), ("val_teacher_cos", "val cosine to teacher")):
        pts = [(s, h[key]) for s, h in zip(steps, history) if h.get(key) is not None]
        if pts:
            ax_val.plot(*zip(*pts), marker=".", label=label)
    ax_val.set_xlabel("step")
    ax_val.set_ylim(0, 1)
    ax_val.set_title("validation (held-out identities)")
    for ax in (ax_loss, ax_val):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(path)
    return path
