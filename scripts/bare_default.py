"""The default `train` run written by hand, as a user would without losslab: digits split 70/15/15 and standardised
with the training split's mean and std, the small CNN (padded for 8x8 images), Adam lr 0.001, batch 64, 20 epochs
with validation, the best epoch's weights tested.

docs/speed.md times this script and `train trainer.progress=false` as whole processes, one after the other:

    python scripts/bare_default.py
"""
import copy
import time

started = time.perf_counter()
import torch
from sklearn.datasets import load_digits
from torch import nn

torch.manual_seed(0)
digits = load_digits()
x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
y = torch.tensor(digits.target)
order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
n_test = n_val = round(0.15 * len(y))
test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
x = (x - x[train].mean()) / x[train].std()  # standardised with the training split's statistics, as data.normalize
model = nn.Sequential(nn.Conv2d(1, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(64, 30, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Flatten(), nn.Linear(30 * 2 * 2, 128), nn.ReLU(), nn.Linear(128, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
criterion = nn.CrossEntropyLoss()


def accuracy(idx):
    model.eval()
    with torch.inference_mode():
        return (model(x[idx]).argmax(1) == y[idx]).float().mean().item()


best, best_state = -1.0, None
for epoch in range(20):
    model.train()
    shuffled = train[torch.randperm(len(train))]
    for start in range(0, len(shuffled), 64):
        idx = shuffled[start:start + 64]
        optimizer.zero_grad()
        criterion(model(x[idx]), y[idx]).backward()
        optimizer.step()
    acc = accuracy(val)
    print(f"epoch {epoch + 1} val acc {acc:.4f}")
    if acc > best:
        best, best_state = acc, copy.deepcopy(model.state_dict())
model.load_state_dict(best_state)
print(f"test acc {accuracy(test):.4f} in {time.perf_counter() - started:.1f} s")
