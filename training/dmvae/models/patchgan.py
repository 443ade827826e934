"""PatchGAN discriminator, hinge losses and the adaptive weight of the tokenizer's GAN term."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class PatchGAN(nn.Module):
    """Conv discriminator giving one real/fake logit per image patch: [N, C, H, W] -> [N, 1, h, w].

    Downsamples `layers` times (stride 2); for 28x28 two layers give 7x7 patches."""

    def __init__(self, in_channels, channels=32, layers=2):
        super().__init__()
        mods, c = [nn.Conv2d(in_channels, channels, 4, 2, 1), nn.LeakyReLU(0.2)], channels
        for _ in range(layers - 1):
            mods += [nn.Conv2d(c, 2 * c, 4, 2, 1), nn.GroupNorm(8, 2 * c), nn.LeakyReLU(0.2)]
            c *= 2
        mods += [nn.Conv2d(c, c, 3, 1, 1), nn.GroupNorm(8, c), nn.LeakyReLU(0.2),
                 nn.Conv2d(c, 1, 3, 1, 1)]
        self.net = nn.Sequential(*mods)

    def forward(self, x):
        return self.net(x)


def hinge_d_loss(logits_real, logits_fake):
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


def hinge_g_loss(logits_fake):
    return -logits_fake.mean()


def adaptive_weight(rec_loss, gan_loss, last_layer, max_weight=1e4):
    """||grad rec|| / ||grad gan|| on the decoder's last layer (Esser et al., taming):
    keeps the GAN gradient at the scale of the reconstruction gradient."""
    g_rec = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    g_gan = torch.autograd.grad(gan_loss, last_layer, retain_graph=True)[0]
    w = g_rec.norm() / (g_gan.norm() + 1e-4)
    return w.clamp(0.0, max_weight).detach()
