"""PNG figures for the report: sample grids, reconstruction grids, loss curves (matplotlib Agg)."""
import json
import os

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display
import matplotlib.pyplot as plt  # noqa: E402


def _to_display(img):
    """[C, H, W] in [-1, 1] -> (H x W or H x W x 3 array in [0, 1], colormap)."""
    x = ((img.detach().cpu().float().clamp(-1, 1) + 1) / 2).numpy()
    return (x[0], "gray") if x.shape[0] == 1 else (x[:3].transpose(1, 2, 0), None)


def save_samples_grid(samples, class_names, path):
    """samples [K, M, C, H, W]: one row per class, labelled with its id and name."""
    k, m = samples.shape[:2]
    fig, axes = plt.subplots(k, m, figsize=(m * 0.9 + 1.6, k * 0.9), squeeze=False)
    for r in range(k):
        for c in range(m):
            ax = axes[r][c]
            img, cmap = _to_display(samples[r, c])
            ax.imshow(img, cmap=cmap, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r][0].set_ylabel(f"{r}: {class_names[r]}", rotation=0, ha="right", va="center",
                              fontsize=8)
    fig.tight_layout(pad=0.2)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_recon_grid(inputs, recons, path, per_row=8):
    """inputs, recons [N, C, H, W]: pairs side by side (input, reconstruction), per_row pairs."""
    n = inputs.shape[0]
    rows = -(-n // per_row)
    fig, axes = plt.subplots(rows, 2 * per_row, figsize=(2 * per_row * 0.8, rows * 0.9),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        r, c = divmod(i, per_row)
        for j, img in enumerate((inputs[i], recons[i])):
            data, cmap = _to_display(img)
            axes[r][2 * c + j].imshow(data, cmap=cmap, vmin=0, vmax=1)
            if r == 0:
                axes[r][2 * c + j].set_title("in" if j == 0 else "rec", fontsize=7)
    fig.tight_layout(pad=0.2)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_loss_curves(metrics_jsonl_paths, out_png):
    """{stage name: metrics JSONL path} -> one panel per stage of every *loss* key over step.

    Rows need "step"; missing files are skipped, but at least one stage must have data.
    """
    series = {}
    for name, path in metrics_jsonl_paths.items():
        if not os.path.exists(path):
            continue
        rows = [r for r in _read_jsonl(path) if "step" in r]
        keys = sorted({k for r in rows for k in r if "loss" in k and isinstance(r[k], (int, float))})
        if keys:
            series[name] = {k: [(r["step"], r[k]) for r in rows if k in r] for k in keys}
    if not series:
        raise ValueError(f"no loss values in any of {list(metrics_jsonl_paths.values())}")
    fig, axes = plt.subplots(1, len(series), figsize=(4.5 * len(series), 3.2), squeeze=False)
    for ax, (name, curves) in zip(axes[0], series.items()):
        for key, points in curves.items():
            steps, values = zip(*points)
            ax.plot(steps, values, label=key, linewidth=1)
        if all(v > 0 for pts in curves.values() for _, v in pts):
            ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
