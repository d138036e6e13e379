"""`train data=diabetes model=mlp loss=mse` written by hand, as a user would without losslab: scikit-learn's diabetes
set split 65/15/20, inputs standardised with the training split's mean and std, targets standardised inside the loss
with the training targets' mean and std, an MLP (10 -> 128 -> 1, ReLU), Adam lr 0.001, batch 32, 20 epochs with the
validation RMSE, the best epoch's weights tested (RMSE, MAE, R^2 in the targets' units).

docs/speed.md times this script and `train data=diabetes model=mlp loss=mse trainer.progress=false` as whole
processes, one after the other:

    python scripts/bare_diabetes.py
"""
import copy
import time

started = time.perf_counter()
import torch
from sklearn.datasets import load_diabetes
from torch import nn

torch.manual_seed(0)
x, y = (torch.tensor(a, dtype=torch.float32) for a in load_diabetes(return_X_y=True, scaled=False))
y = y.unsqueeze(1)
order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
n_test, n_val = round(0.2 * len(y)), round(0.15 * len(y))
test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
x = (x - x[train].mean(0)) / x[train].std(0)  # standardised with the training split's statistics
y_mean, y_std = y[train].mean(), y[train].std()
model = nn.Sequential(nn.Linear(10, 128), nn.ReLU(), nn.Linear(128, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)


def predict(idx):
    model.eval()
    with torch.inference_mode():
        return model(x[idx]) * y_std + y_mean  # back in the targets' units


def rmse(idx):
    return (predict(idx) - y[idx]).pow(2).mean().sqrt().item()


best, best_state = float("inf"), None
for epoch in range(20):
    model.train()
    shuffled = train[torch.randperm(len(train))]
    for start in range(0, len(shuffled), 32):
        idx = shuffled[start:start + 32]
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x[idx]), (y[idx] - y_mean) / y_std).backward()
        optimizer.step()
    error = rmse(val)
    print(f"epoch {epoch + 1} val rmse {error:.2f}")
    if error < best:
        best, best_state = error, copy.deepcopy(model.state_dict())
model.load_state_dict(best_state)
errors = predict(test) - y[test]
r2 = 1 - errors.pow(2).sum() / (y[test] - y[test].mean()).pow(2).sum()
print(f"test rmse {errors.pow(2).mean().sqrt():.2f} mae {errors.abs().mean():.2f} r2 {r2:.3f} "
      f"in {time.perf_counter() - started:.1f} s")
