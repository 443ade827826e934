"""A small Fashion-MNIST classifier: class accuracy of generated samples, and a feature space
for FID on 28x28 grey images where Inception features would mean little.

Run (standalone check): cd training && /usr/bin/python3 -m dmvae.classifier
"""
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class FashionClassifier(nn.Module):
    """[N, 1, 28, 28] in [-1, 1] -> 10 logits; .features() gives the 128-d penultimate layer."""

    feature_dim = 128

    def __init__(self, num_classes=10, in_channels=1, image_size=28):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(2),  # 7x7
        )
        side = image_size // 4
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(64 * side * side, self.feature_dim),
                                    nn.ReLU())
        self.head = nn.Linear(self.feature_dim, num_classes)  # no dropout: 2 epochs underfit anyway

    def features(self, img):
        """img [N, C, H, W] in [-1, 1] -> [N, 128]."""
        return self.hidden(self.conv(img))

    def forward(self, img):
        return self.head(self.features(img))


@torch.no_grad()
def predict(model, images, batch_size=1024, device="cpu"):
    """-> (logits [N, K], features [N, D]) on the CPU, in eval mode, batch by batch."""
    model.eval()
    logits, feats = [], []
    for i in range(0, images.shape[0], batch_size):
        f = model.features(images[i:i + batch_size].to(device))
        feats.append(f.cpu())
        logits.append(model.head(f).cpu())
    return torch.cat(logits), torch.cat(feats)


def accuracy(model, images, labels, batch_size=1024, device="cpu"):
    logits, _ = predict(model, images, batch_size, device)
    return (logits.argmax(dim=1) == labels.cpu()).float().mean().item()


def train_classifier(images, labels, epochs=2, batch_size=256, lr=5e-3, device="cpu", log=print,
                     seed=0, num_classes=10):
    """Adam with a one-cycle schedule over `epochs`; returns the model in eval mode.

    images [N, C, H, W] in [-1, 1], labels [N] int64. About 91% test accuracy on
    Fashion-MNIST after 2 epochs (tests/test_classifier.py measures it).
    """
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    n, c, h, _ = images.shape
    model = FashionClassifier(num_classes, c, h).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * ((n + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    t0, step = time.time(), 0
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n, generator=g)
        total, correct = 0.0, 0
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            x, y = images[idx].to(device), labels[idx].to(device)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            total += loss.item() * len(idx)
            correct += (logits.argmax(1) == y).sum().item()
        log(f"classifier epoch {epoch + 1}/{epochs} loss {total / n:.4f} "
            f"train_acc {correct / n:.4f} time {time.time() - t0:.1f}s")
    return model.eval()


if __name__ == "__main__":
    from .data import load_fashion_mnist

    root = "/usr/share/datasets/fashion-mnist"
    xtr, ytr = load_fashion_mnist(root, "train")
    xte, yte = load_fashion_mnist(root, "test")
    t0 = time.time()
    clf = train_classifier(xtr, ytr)
    print(f"test accuracy {accuracy(clf, xte, yte):.4f} in {time.time() - t0:.1f}s")
