"""Run configuration: one dataclass per model or stage, loaded from a JSON file plus overrides.

    cfg = load_config("configs/fmnist.json", overrides=["tokenizer.steps=200"])

Unknown keys are errors (a typo in a config file must not silently train the default).
The resolved config is written to the run folder and stored in every checkpoint.
"""
import dataclasses
import json
from dataclasses import dataclass, field
from typing import List, Optional

from .errors import PipelineError


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

@dataclass
class ViTConfig:
    """The SSL encoder. Parameter names follow DINOv2 so its checkpoints load directly."""
    image_size: int = 28
    in_channels: int = 1
    patch_size: int = 4        # 28 / 4 = 7x7 tokens, the latent grid
    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    num_register_tokens: int = 0   # DINOv2 "reg" variants use 4
    layerscale_init: float = 0.1   # DINOv2 uses 1e-5; small from-scratch runs learn faster at 0.1
    weights: Optional[str] = None  # local DINOv2 state dict (.pth); None = train our own (ssl stage)


@dataclass
class DecoderConfig:
    """SD/FLUX-style conv decoder. Level j (coarse to fine) ends with a x2 upsampling while
    j < log2(image / latent grid); channels at level j are base_channels * ch_mult[-1 - j]."""
    base_channels: int = 32
    ch_mult: List[int] = field(default_factory=lambda: [1, 2, 4])
    num_res_blocks: int = 1
    groups: int = 8            # GroupNorm groups; must divide every level's channel count


@dataclass
class TokenizerModelConfig:
    latent_channels: int = 4       # Cz per token; latent = [Cz, grid, grid]
    bottleneck_hidden: int = 256   # MLP bottleneck hidden width (paper: 2048, SiLU)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)


@dataclass
class DiTConfig:
    """LightningDiT-style flow-matching transformer (patch 1 on the latent grid)."""
    dim: int = 192
    depth: int = 6
    heads: int = 4
    mlp_ratio: float = 4.0         # SwiGLU hidden = 2/3 * mlp_ratio * dim (same parameter count)
    rope_theta: float = 100.0      # small grids (7x7) need a short base period to tell cells apart


# ---------------------------------------------------------------------------------------------
# Stages
# ---------------------------------------------------------------------------------------------

@dataclass
class DataConfig:
    kind: str = "fashion-mnist"    # "fashion-mnist" (Debian IDX .gz files) or "folder" (ImageNet style)
    root: str = "/usr/share/datasets/fashion-mnist"
    class_index: Optional[str] = None   # folder datasets: JSON {"<folder>": [id, "name"]} or list
    max_train: Optional[int] = None     # cap for tiny runs and tests; None = all
    max_test: Optional[int] = None
    num_workers: int = 0


@dataclass
class OptimConfig:
    lr: float = 1e-3
    betas: List[float] = field(default_factory=lambda: [0.9, 0.95])
    weight_decay: float = 0.0
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1      # cosine decay to lr * min_lr_ratio at the last step
    grad_clip: float = 1.0


@dataclass
class SSLStageConfig:
    model: ViTConfig = field(default_factory=ViTConfig)
    steps: int = 2000
    batch_size: int = 128
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3, weight_decay=0.05))
    mask_ratio: float = 0.4        # SimMIM-style: masked tokens are replaced by mask_token
    visible_weight: float = 0.5    # visible tokens also predict their own pixels: keeps detail
    invariance_weight: float = 0.1 # cosine agreement of two augmented views' pooled features
    max_shift: int = 2             # random translation (pixels) of each view


@dataclass
class TokenizerStageConfig:
    model: TokenizerModelConfig = field(default_factory=TokenizerModelConfig)
    steps: int = 3000
    batch_size: int = 64
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=2e-3))
    l1_weight: float = 1.0
    l2_weight: float = 1.0         # MSE term: PSNR is an L2 measure
    perceptual: str = "ssl"        # "ssl" (frozen SSL encoder features), "lpips" or "none"
    perceptual_weight: float = 0.1
    lpips_weights: Optional[str] = None  # local LPIPS state dict when perceptual == "lpips"
    gan_start: Optional[int] = None      # step at which PatchGAN switches on; None = never
    gan_weight: float = 0.5
    disc_channels: int = 32
    disc_lr: float = 2e-4


@dataclass
class ReferenceStageConfig:
    kind: str = "ssl"              # "ssl": DiT on normalised stage-1 latents; "gaussian": N(0, I)
    model: DiTConfig = field(default_factory=DiTConfig)
    steps: int = 3000
    batch_size: int = 128
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3))
    label_dropout: float = 0.1
    ema_decay: float = 0.999       # the teacher of the align stage uses the EMA weights
    cache_latents: bool = True     # encode the train set once; off at ImageNet scale (memory)
    cache_limit: Optional[int] = None  # cache only the first N train images (encoding costs)
    stats_batches: int = 50        # batches used to measure latent mean and scale (uncached)


@dataclass
class AlignStageConfig:
    steps: int = 500
    batch_size: int = 64
    vae_lr: float = 2e-5           # the paper's 2e-5 for the whole VAE (encoder included)
    student_lr: float = 1e-3
    betas: List[float] = field(default_factory=lambda: [0.9, 0.95])
    k: int = 5                     # VAE update every k steps; the student trains every step
    dm_weight: float = 10.0        # lambda
    cfg_scale: float = 5.0
    t_min: float = 0.0
    t_max: float = 1.0
    grad_clip: float = 1.0
    train_encoder: bool = True     # the paper trains the SSL encoder too in this stage


@dataclass
class GeneratorStageConfig:
    model: DiTConfig = field(default_factory=DiTConfig)
    init: str = "reference"        # "reference" | "student" | "scratch": warm start saves CPU time
    steps: int = 4000
    batch_size: int = 128
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3))
    label_dropout: float = 0.1
    ema_decay: float = 0.999
    cache_latents: bool = True
    cache_limit: Optional[int] = None
    stats_batches: int = 50


@dataclass
class SamplerConfig:
    method: str = "heun"
    steps: int = 16
    cfg_scale: float = 3.0
    cfg_interval: List[float] = field(default_factory=lambda: [0.0, 1.0])
    shift: float = 2.5


@dataclass
class EvalStageConfig:
    classifier_epochs: int = 3
    num_gen_per_class: int = 100
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    cfg_sweep: List[float] = field(default_factory=lambda: [1.0, 2.0, 3.0, 5.0])  # [] = no sweep
    sweep_per_class: int = 20      # small budget per setting: compare settings, not absolute FID
    inception_weights: Optional[str] = None


@dataclass
class ExportStageConfig:
    name: str = "fmnist-dmvae"
    description: str = "DMVAE tokenizer and class-conditional latent generator for Fashion-MNIST"
    opset: int = 17
    golden_batch: int = 2
    golden_sampling: List[dict] = field(default_factory=lambda: [
        {"class": 7, "seed": 1234, "count": 2, "method": "heun", "steps": 8, "cfg_scale": 3.0,
         "cfg_interval": [0.0, 1.0], "shift": 2.5},
        {"class": 0, "seed": 42, "count": 1, "method": "euler", "steps": 4, "cfg_scale": 1.0,
         "cfg_interval": [0.0, 1.0], "shift": 1.0},
    ])


@dataclass
class Config:
    name: str = "fmnist"
    seed: int = 0
    ckpt_every: int = 500          # steps between checkpoints (and on exit of every stage)
    log_every: int = 50
    data: DataConfig = field(default_factory=DataConfig)
    ssl: SSLStageConfig = field(default_factory=SSLStageConfig)
    tokenizer: TokenizerStageConfig = field(default_factory=TokenizerStageConfig)
    reference: ReferenceStageConfig = field(default_factory=ReferenceStageConfig)
    align: AlignStageConfig = field(default_factory=AlignStageConfig)
    generator: GeneratorStageConfig = field(default_factory=GeneratorStageConfig)
    eval: EvalStageConfig = field(default_factory=EvalStageConfig)
    export: ExportStageConfig = field(default_factory=ExportStageConfig)


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

def from_dict(cls, data, where="config"):
    """Build dataclass `cls` from a dict, recursing into nested dataclasses; unknown keys fail."""
    if not isinstance(data, dict):
        raise PipelineError("config_invalid", f"{where} must be an object, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise PipelineError("config_invalid", f"unknown key(s) {unknown} in {where}; "
                            f"known: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        sub = _dataclass_type(fields[name])
        kwargs[name] = from_dict(sub, value, f"{where}.{name}") if sub else value
    return cls(**kwargs)


def _dataclass_type(f):
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    return type(default) if dataclasses.is_dataclass(default) else None


def to_dict(cfg):
    return dataclasses.asdict(cfg)


def apply_override(data, assignment):
    """'tokenizer.steps=200' -> data['tokenizer']['steps'] = 200 (value parsed as JSON if it can)."""
    if "=" not in assignment:
        raise PipelineError("config_invalid", f"--set expects key=value, got {assignment!r}")
    key, raw = assignment.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # bare strings: --set data.root=/tmp/x
    node, parts = data, key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise PipelineError("config_invalid", f"--set {key}: {part} is not a section")
    node[parts[-1]] = value


def load_config(path=None, overrides=()):
    """JSON file (or defaults when path is None) + 'a.b=v' overrides -> validated Config."""
    data = {}
    if path:
        try:
            with open(path) as f:
                data = json.load(f)
        except FileNotFoundError:
            raise PipelineError("config_missing", f"config file {path} not found; "
                                "pass --config configs/fmnist.json (run from training/)") from None
        except json.JSONDecodeError as e:
            raise PipelineError("config_invalid", f"config file {path} is not valid JSON: {e}")
    for assignment in overrides:
        apply_override(data, assignment)
    cfg = from_dict(Config, data)
    validate(cfg)
    return cfg


def validate(cfg):
    problems = []
    vit = cfg.ssl.model
    if vit.image_size % vit.patch_size:
        problems.append(f"ssl.model.image_size {vit.image_size} not divisible by patch_size")
    if vit.dim % vit.heads:
        problems.append("ssl.model.dim must be divisible by ssl.model.heads")
    for name in ("reference", "generator"):
        dit = getattr(cfg, name).model
        if dit.dim % dit.heads or (dit.dim // dit.heads) % 4:
            problems.append(f"{name}.model: dim/heads must be a multiple of 4 (2-D rotary)")
    if cfg.reference.kind not in ("ssl", "gaussian"):
        problems.append(f"reference.kind must be 'ssl' or 'gaussian', got {cfg.reference.kind!r}")
    if cfg.generator.init not in ("reference", "student", "scratch"):
        problems.append("generator.init must be reference|student|scratch")
    if cfg.generator.init != "scratch" and cfg.generator.model != cfg.reference.model:
        problems.append("generator.init warm-starts from reference/student weights, so "
                        "generator.model must equal reference.model (or set generator.init=scratch)")
    if cfg.tokenizer.perceptual not in ("ssl", "lpips", "none"):
        problems.append("tokenizer.perceptual must be ssl|lpips|none")
    if cfg.eval.sampler.method not in ("euler", "heun"):
        problems.append("eval.sampler.method must be euler|heun")
    if cfg.align.k < 1:
        problems.append("align.k must be >= 1")
    if problems:
        raise PipelineError("config_invalid", "; ".join(problems))
