"""Model pieces: DINOv2 loading from a file, shapes, CFG null class, decoder geometry, LPIPS,
PatchGAN adaptive weight, the exact Gaussian reference.

Run: cd training && /usr/bin/python3 -m pytest -q tests/test_models.py
"""
import pytest
import torch

from dmvae.config import DecoderConfig, DiTConfig, TokenizerModelConfig, TokenizerStageConfig, ViTConfig
from dmvae.errors import PipelineError
from dmvae.models.dit import DiT
from dmvae.models.patchgan import PatchGAN, adaptive_weight, hinge_g_loss
from dmvae.models.perceptual import LPIPS
from dmvae.models.tokenizer import Decoder, Tokenizer
from dmvae.models.vit import ViT, load_dinov2
from dmvae.stages.common import GaussianReference, ReconLoss


def dinov2_state_dict(dim=32, depth=2, grid=37, patch=14, registers=4, prefix=""):
    """Random tensors with DINOv2's key names and shapes (vitX14_reg layout)."""
    sd = {"cls_token": torch.randn(1, 1, dim), "pos_embed": torch.randn(1, 1 + grid * grid, dim),
          "mask_token": torch.randn(1, dim), "register_tokens": torch.randn(1, registers, dim),
          "patch_embed.proj.weight": torch.randn(dim, 3, patch, patch),
          "patch_embed.proj.bias": torch.randn(dim),
          "norm.weight": torch.randn(dim), "norm.bias": torch.randn(dim)}
    for i in range(depth):
        b = f"blocks.{i}."
        sd.update({b + "norm1.weight": torch.randn(dim), b + "norm1.bias": torch.randn(dim),
                   b + "attn.qkv.weight": torch.randn(3 * dim, dim),
                   b + "attn.qkv.bias": torch.randn(3 * dim),
                   b + "attn.proj.weight": torch.randn(dim, dim),
                   b + "attn.proj.bias": torch.randn(dim),
                   b + "ls1.gamma": torch.randn(dim), b + "ls2.gamma": torch.randn(dim),
                   b + "norm2.weight": torch.randn(dim), b + "norm2.bias": torch.randn(dim),
                   b + "mlp.fc1.weight": torch.randn(4 * dim, dim),
                   b + "mlp.fc1.bias": torch.randn(4 * dim),
                   b + "mlp.fc2.weight": torch.randn(dim, 4 * dim),
                   b + "mlp.fc2.bias": torch.randn(dim)})
    return {prefix + k: v for k, v in sd.items()}


def test_dinov2_weights_load_from_a_file_with_patch_and_grid_resampled(tmp_path):
    sd = dinov2_state_dict(prefix="backbone.")
    path = tmp_path / "dinov2.pth"
    torch.save({"model": sd}, path)
    vit = ViT(ViTConfig(image_size=64, in_channels=3, patch_size=16, dim=32, depth=2, heads=4,
                        num_register_tokens=4))
    load_dinov2(vit, str(path), log=lambda *_: None)
    assert torch.equal(vit.blocks[1].attn.qkv.weight, sd["backbone.blocks.1.attn.qkv.weight"])
    assert torch.equal(vit.register_tokens, sd["backbone.register_tokens"])
    assert vit.patch_embed.proj.weight.shape == (32, 3, 16, 16)
    assert vit.pos_embed.shape == (1, 1 + 16, 32)            # 37x37 grid resampled to 4x4
    assert vit(torch.randn(2, 3, 64, 64)).shape == (2, 16, 32)


def test_dinov2_encoders_see_imagenet_standardised_pixels_our_own_see_them_as_they_are():
    cfg = dict(image_size=28, in_channels=3, patch_size=14, dim=32, depth=1, heads=4)
    own, pretrained = ViT(ViTConfig(**cfg)), ViT(ViTConfig(**cfg, weights="dinov2.pth"))
    x = torch.rand(2, 3, 28, 28) * 2 - 1
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(pretrained.embed(x), pretrained.patch_embed(((x + 1) / 2 - mean) / std))
    assert torch.equal(own.embed(x), own.patch_embed(x))
    assert "input_mean" not in pretrained.state_dict()  # DINOv2 files and old checkpoints load


def test_dinov2_rgb_weights_serve_a_grey_encoder():
    vit = ViT(ViTConfig(image_size=28, in_channels=1, patch_size=4, dim=32, depth=2, heads=4,
                        num_register_tokens=4))
    from dmvae.models.vit import convert_dinov2_state_dict
    sd = dinov2_state_dict()
    out, _ = convert_dinov2_state_dict(sd, vit)
    assert out["patch_embed.proj.weight"].shape == (32, 1, 4, 4)


def test_dinov2_file_with_the_wrong_depth_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "d.pth"
    torch.save(dinov2_state_dict(depth=1), path)
    vit = ViT(ViTConfig(image_size=28, in_channels=3, patch_size=14, dim=32, depth=2, heads=4,
                        num_register_tokens=4))
    with pytest.raises(PipelineError, match="lacks.*blocks.1"):
        load_dinov2(vit, str(path), log=lambda *_: None)


def test_tokenizer_round_trip_shapes():
    tok = Tokenizer(ViTConfig(dim=16, depth=1, heads=2),
                    TokenizerModelConfig(bottleneck_hidden=16,
                                         decoder=DecoderConfig(base_channels=8, groups=4)))
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    recon, z = tok(x)
    assert z.shape == (3, 4, 7, 7) and recon.shape == x.shape


def test_decoder_upsamples_after_every_level_when_the_paper_needs_16x():
    dec = Decoder(DecoderConfig(base_channels=8, ch_mult=[1, 2, 4, 4], num_res_blocks=1, groups=4),
                  latent_channels=4, out_channels=3, ups=4)
    assert dec(torch.randn(1, 4, 4, 4)).shape == (1, 3, 64, 64)


def test_dit_velocity_shape_and_null_class_changes_the_output():
    dit = DiT(DiTConfig(dim=16, depth=2, heads=2), (4, 7, 7), num_classes=10)
    for p in dit.parameters():  # adaLN-Zero starts at exactly 0; perturb to see conditioning
        torch.nn.init.normal_(p, std=0.1)
    x, t = torch.randn(2, 4, 7, 7), torch.tensor([0.3, 0.3])
    v_cond = dit(x, t, torch.tensor([3, 3]))
    v_null = dit(x, t, torch.tensor([10, 10]))
    assert v_cond.shape == x.shape
    assert not torch.allclose(v_cond, v_null)


def test_dit_rope_makes_attention_position_aware():
    dit = DiT(DiTConfig(dim=16, depth=1, heads=2), (4, 7, 7), num_classes=10)
    for p in dit.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(1, 4, 7, 7)
    t, y = torch.tensor([0.5]), torch.tensor([1])
    shifted = torch.roll(x, 1, dims=3)
    # a position-blind transformer would commute with the shift; ours must not
    assert not torch.allclose(torch.roll(dit(x, t, y), 1, dims=3), dit(shifted, t, y), atol=1e-4)


def test_gaussian_reference_is_the_exact_velocity_for_gaussian_data():
    torch.manual_seed(0)
    z, e = torch.randn(20000, 2), torch.randn(20000, 2)
    t = torch.full((20000,), 0.3)
    xt = 0.3 * z + 0.7 * e
    v = GaussianReference()(xt, t, None)
    # the exact conditional mean minimises the FM loss: check against a least-squares fit
    slope = ((z - e) * xt).sum() / (xt * xt).sum()
    assert torch.allclose(v, slope * xt, rtol=0.05)


def test_lpips_loads_weights_from_a_file_and_measures_distance(tmp_path):
    from torchvision.models.vgg import cfgs, make_layers
    sd = {f"features.{k}": v for k, v in make_layers(cfgs["D"]).state_dict().items()}
    for i, c in enumerate((64, 128, 256, 512, 512)):
        sd[f"lin{i}.model.1.weight"] = torch.rand(1, c, 1, 1)
    torch.save(sd, tmp_path / "lpips.pth")
    lp = LPIPS(str(tmp_path / "lpips.pth"))
    a = torch.rand(2, 1, 32, 32) * 2 - 1
    assert lp(a, a).item() == pytest.approx(0.0, abs=1e-6)
    assert lp(a, -a).item() > 0
    with pytest.raises(PipelineError, match="not found"):
        LPIPS(str(tmp_path / "missing.pth"))


def test_recon_loss_with_ssl_perceptual_is_zero_only_for_a_perfect_reconstruction():
    vit = ViT(ViTConfig(dim=16, depth=2, heads=2))
    loss = ReconLoss(TokenizerStageConfig(perceptual="ssl", perceptual_weight=1.0), vit)
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    assert loss(x, x)[0].item() == pytest.approx(0.0, abs=1e-6)
    total, parts = loss(x * 0.5, x)
    assert total.item() > 0 and parts["perceptual"] > 0
    assert not any(p.requires_grad for p in loss.perceptual._vit[0].parameters())


def test_adaptive_weight_balances_gradient_norms_on_the_last_layer():
    dec = Decoder(DecoderConfig(base_channels=8, groups=4), 4, 1, ups=2)
    disc = PatchGAN(1, 8)
    recon = dec(torch.randn(2, 4, 7, 7))
    rec = recon.abs().mean()
    gan = hinge_g_loss(disc(recon)) * 100.0   # scaling the GAN loss scales its weight down
    w = adaptive_weight(rec, gan, dec.last_layer)
    w_unscaled = adaptive_weight(rec, gan / 100.0, dec.last_layer)
    assert w.item() > 0
    assert w_unscaled.item() == pytest.approx(100 * w.item(), rel=1e-3)
