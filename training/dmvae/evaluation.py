"""Stage 5, evaluation: reconstruction and generation metrics on the test split, plus the report.

evaluate() measures, writes out_dir/{metrics.json, report.md, samples_grid.png, recon_grid.png}
and returns the metrics. Features for FID come from the small Fashion-MNIST classifier
(dmvae/classifier.py), so the FIDs are comparable with each other, not with published FIDs.
"""
import json
import math
import os
import time

import numpy as np
import torch

from .classifier import predict
from .metrics import fid_from_features, psnr, ssim
from .noise import NOISE_GENERATOR, latent_noise
from .plots import plot_loss_curves, save_recon_grid, save_samples_grid  # noqa: F401 (re-export)
from .sampling import denormalize, sample

SAMPLER_KEYS = ("method", "steps", "cfg_scale", "cfg_interval", "shift")


def _batched(fn, x, batch_size, device):
    with torch.no_grad():
        return torch.cat([fn(x[i:i + batch_size].to(device)).cpu()
                          for i in range(0, x.shape[0], batch_size)])


def reconstruct(tokenizer, images, batch_size, device):
    """images [N, C, H, W] -> decoder(encoder(images)) clamped to [-1, 1], as the service does."""
    return _batched(lambda x: tokenizer.decode(tokenizer.encode(x)), images, batch_size,
                    device).clamp(-1, 1)


def generate_class(tokenizer, generator, latent_mean, latent_scale, class_id, count, seed,
                   latent_shape, null_class, sampler_cfg, batch_size, device):
    """count images [count, C, H, W] of one class from contract noise (seed, samples 0..count-1)."""
    noise = torch.from_numpy(latent_noise(seed, count, latent_shape))
    out = []
    for i in range(0, count, batch_size):
        x = sample(generator, noise[i:i + batch_size].to(device), class_id, null_class,
                   **{k: sampler_cfg[k] for k in SAMPLER_KEYS})
        with torch.no_grad():
            out.append(tokenizer.decode(denormalize(x, latent_mean, latent_scale)).cpu())
    return torch.cat(out).clamp(-1, 1)


def _check_sampler_cfg(cfg):
    missing = [k for k in SAMPLER_KEYS if k not in cfg]
    if missing:
        raise ValueError(f"sampler_cfg lacks {missing}; needs all of {SAMPLER_KEYS}")
    return {k: (list(cfg[k]) if k == "cfg_interval" else cfg[k]) for k in SAMPLER_KEYS}


def generate_and_score(tokenizer, generator, latent_mean, latent_scale, classifier, test_feats,
                       num_classes, null_class, sampler_cfg, per_class, seed, latent_shape,
                       batch_size, device):
    """Generated images of every class, scored: (images [K, per_class, ...], metrics dict)."""
    images = []
    for c in range(num_classes):
        images.append(generate_class(tokenizer, generator, latent_mean, latent_scale, c,
                                     per_class, seed + c, latent_shape, null_class,
                                     sampler_cfg, batch_size, device))
    flat = torch.cat(images)
    logits, feats = predict(classifier, flat, batch_size, device)
    wanted = torch.arange(num_classes).repeat_interleave(per_class)
    correct = (logits.argmax(1) == wanted).float()
    per_class_acc = correct.view(num_classes, per_class).mean(1).tolist()
    return torch.stack(images), {
        "gen_accuracy": correct.mean().item(),
        "gen_accuracy_per_class": per_class_acc,
        "gfid": fid_from_features(feats, test_feats),
        "gen_count": int(flat.shape[0]),
    }


def subsample(x, n, seed):
    idx = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
    return x[idx]


def evaluate(tokenizer, generator, latent_mean, latent_scale, classifier, train_images,
             test_images, test_labels, class_names, null_class, sampler_cfg, out_dir, device,
             num_gen_per_class=100, batch_size=256, log=print, seed=0, inception=None):
    """Measures everything on the TEST split and writes the report folder; returns metrics.

    tokenizer: .encode(img [N, C, H, W] in [-1, 1]) -> raw z, .decode(z) -> img.
    generator: (x [N, ...] normalised, t [N], y [N]) -> v. Networks are switched to eval mode.
    Generated class c uses contract noise with seed (seed + c), samples 0..num_gen_per_class-1.
    inception: optional images -> [N, 2048] features (metrics.InceptionFeatures); when given,
    rFID and gFID are also measured in its feature space.
    """
    cfg = _check_sampler_cfg(sampler_cfg)
    for m in (tokenizer, generator, classifier):
        if isinstance(m, torch.nn.Module):
            m.eval()
    os.makedirs(out_dir, exist_ok=True)
    t0, k = time.time(), len(class_names)
    m = {"test_count": int(test_images.shape[0]), "train_count": int(train_images.shape[0])}

    test_logits, test_feats = predict(classifier, test_images, batch_size, device)
    test_hits = test_logits.argmax(1) == test_labels.cpu()
    m["classifier_test_accuracy"] = test_hits.float().mean().item()
    log(f"eval classifier test_acc {m['classifier_test_accuracy']:.4f}")

    recon = reconstruct(tokenizer, test_images, batch_size, device)
    m["recon_psnr"] = psnr(test_images, recon)
    m["recon_ssim"] = ssim(test_images, recon) if min(test_images.shape[-2:]) >= 11 else None
    m["rfid"] = fid_from_features(predict(classifier, recon, batch_size, device)[1], test_feats)
    m["recon_mse"] = ((recon - test_images.cpu()) ** 2).mean().item()
    log(f"eval recon psnr {m['recon_psnr']:.2f} ssim {m['recon_ssim']} rfid {m['rfid']:.3f}")

    latent_shape = tuple(_batched(tokenizer.encode, test_images[:1], 1, device).shape[1:])
    samples, gen = generate_and_score(tokenizer, generator, latent_mean, latent_scale, classifier,
                                      test_feats, k, null_class, cfg, num_gen_per_class, seed,
                                      latent_shape, batch_size, device)
    m.update(gen)
    log(f"eval gen acc {m['gen_accuracy']:.4f} gfid {m['gfid']:.3f} ({m['gen_count']} samples)")

    if inception is not None:
        test_inc = _batched(inception, test_images, batch_size, device)
        m["rfid_inception"] = fid_from_features(_batched(inception, recon, batch_size, device),
                                                test_inc)
        m["gfid_inception"] = fid_from_features(
            _batched(inception, samples.flatten(0, 1), batch_size, device), test_inc)
        log(f"eval inception rfid {m['rfid_inception']:.3f} gfid {m['gfid_inception']:.3f}")

    # floors: real train images against the same test features, at the sizes used above
    train_sub = subsample(train_images, max(m["gen_count"], m["test_count"]), seed)
    train_feats = predict(classifier, train_sub, batch_size, device)[1]
    m["fid_floor_gen"] = fid_from_features(train_feats[:m["gen_count"]], test_feats)
    m["fid_floor_recon"] = fid_from_features(train_feats[:m["test_count"]], test_feats)
    m["floor_train_counts"] = [min(m["gen_count"], m["train_count"]),
                               min(m["test_count"], m["train_count"])]
    m.update(latent_shape=list(latent_shape), latent_mean=float(latent_mean),
             latent_scale=float(latent_scale), sampler=cfg, seed=seed,
             noise_generator=NOISE_GENERATOR, per_class=num_gen_per_class,
             feature_space=f"{type(classifier).__name__} penultimate features "
                           f"({classifier.feature_dim}-d)",
             eval_seconds=round(time.time() - t0, 1))

    save_samples_grid(samples[:, :10], class_names, os.path.join(out_dir, "samples_grid.png"))
    save_recon_grid(test_images[:16], recon[:16], os.path.join(out_dir, "recon_grid.png"))
    write_metrics(m, os.path.join(out_dir, "metrics.json"))
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(render_report(m, class_names))
    log(f"eval wrote {out_dir} in {m['eval_seconds']}s")
    return m


def _json_safe(v):
    """inf/nan are not JSON (and the manifest embeds these metrics): write them as null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    return v


def write_metrics(metrics, path):
    with open(path, "w") as f:
        json.dump(_json_safe(metrics), f, indent=2, allow_nan=False)


def _fmt(v, digits=3):
    return "n/a" if v is None else ("inf" if v == math.inf else f"{v:.{digits}f}")


def render_report(m, class_names):
    s, n_gen = m["sampler"], m["gen_count"]
    per_class = "\n".join(f"| {i} | {name} | {_fmt(a, 2)} |"
                          for i, (name, a) in enumerate(zip(class_names, m["gen_accuracy_per_class"])))
    return f"""# Evaluation report

All numbers are on the **test split** ({m['test_count']} images) unless stated. FID values use
the features of the project's own classifier ({m['feature_space']}), not Inception: they
compare runs of this project with each other, not with published FIDs.

## Classifier
- Test accuracy: **{_fmt(m['classifier_test_accuracy'], 4)}** (all {m['test_count']} test images).

## Reconstruction (encode -> decode, output clamped to [-1, 1])
- PSNR: **{_fmt(m['recon_psnr'], 2)} dB** (per image, data range 2 on [-1, 1], then mean).
- SSIM: **{_fmt(m['recon_ssim'], 4)}** (Gaussian window 11, sigma 1.5, on [0, 1]).
- rFID: **{_fmt(m['rfid'])}** (reconstructions vs originals, {m['test_count']} each).
- Floor: FID of {m['floor_train_counts'][1]} random train images vs the test images:
  **{_fmt(m['fid_floor_recon'])}**.

## Generation
- Sampler: {s['method']}, {s['steps']} steps, CFG scale {s['cfg_scale']} on t in
  {s['cfg_interval']}, shift {s['shift']}; latent {m['latent_shape']}, un-normalised with
  mean {m['latent_mean']} and scale {m['latent_scale']}.
- Noise: `{m['noise_generator']}`, class c uses seed {m['seed']} + c, samples
  0..{m['per_class'] - 1}; {m['per_class']} per class, {n_gen} in all.
- gFID: **{_fmt(m['gfid'])}** ({n_gen} generated vs {m['test_count']} test images).
- Floor: FID of {m['floor_train_counts'][0]} random train images vs the same test images:
  **{_fmt(m['fid_floor_gen'])}** (what a perfect generator would score at this sample size).
- Class accuracy: **{_fmt(m['gen_accuracy'], 4)}** (fraction of generated images the
  classifier assigns to the requested class).
{inception_lines(m)}
| id | class | accuracy |
|---|---|---|
{per_class}

Grids: `samples_grid.png` (one row per class), `recon_grid.png` (test inputs beside their
reconstructions). Evaluation took {m['eval_seconds']} s.
"""


def inception_lines(m):
    if "gfid_inception" not in m:
        return ""
    return (f"- Inception features (2048-d pool): rFID **{_fmt(m['rfid_inception'])}**, "
            f"gFID **{_fmt(m['gfid_inception'])}**\n  (torchvision inception_v3 from a local "
            "weights file, same images and test set as above).\n")


def sweep_sampler(tokenizer, generator, latent_mean, latent_scale, classifier, real_images,
                  num_classes, null_class, settings, device, per_class=20, batch_size=256,
                  seed=0, log=print):
    """Scores each sampler setting (dicts of SAMPLER_KEYS) on a small budget, same noise for all.

    Returns [{**setting, gen_accuracy, gfid, seconds}]; use it to pick manifest defaults.
    gFID is against `real_images`: pass held-out TRAIN images and a seed the report does not
    use, so the choice is not tuned on the test numbers it is judged by. The small sample
    count inflates gFID; compare settings with each other only.
    """
    real_feats = predict(classifier, real_images, batch_size, device)[1]
    latent_shape = tuple(_batched(tokenizer.encode, real_images[:1], 1, device).shape[1:])
    rows = []
    for setting in settings:
        cfg, t0 = _check_sampler_cfg(setting), time.time()
        _, g = generate_and_score(tokenizer, generator, latent_mean, latent_scale, classifier,
                                  real_feats, num_classes, null_class, cfg, per_class, seed,
                                  latent_shape, batch_size, device)
        rows.append({**cfg, "gen_accuracy": g["gen_accuracy"], "gfid": g["gfid"],
                     "gen_count": g["gen_count"],
                     "seconds": round(time.time() - t0, 1)})
        log(f"sweep {cfg} acc {g['gen_accuracy']:.3f} gfid {g['gfid']:.3f}")
    return rows
