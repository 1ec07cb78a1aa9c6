"""Captures PyTorch OneCycleLR's cycled momentum into torch_golden_momentum.json (run by hand; needs torch).

    /tmp/scratch/bin/python tests/callbacks/make_torch_golden.py

For each case it builds OneCycleLR(cycle_momentum=True) on SGD (momentum) and Adam (beta_1), steps the
optimizer and the scheduler `total_steps` times and records the momentum each optimizer step used. pytest does not
collect this file (its name does not start with test_).
"""

import json
import pathlib

import torch

CASES = [
    {"base_momentum": 0.85, "max_momentum": 0.95, "total_steps": 100, "pct_start": 0.3, "anneal_strategy": "cos",
     "three_phase": False},
    {"base_momentum": 0.8, "max_momentum": 0.9, "total_steps": 37, "pct_start": 0.25, "anneal_strategy": "linear",
     "three_phase": False},
    {"base_momentum": 0.85, "max_momentum": 0.95, "total_steps": 60, "pct_start": 0.3, "anneal_strategy": "cos",
     "three_phase": True},
    {"base_momentum": 0.5, "max_momentum": 0.99, "total_steps": 23, "pct_start": 0.4, "anneal_strategy": "linear",
     "three_phase": True},
]


def momenta(case, optimizer_name):
    parameter = torch.nn.Parameter(torch.zeros(1))
    if optimizer_name == "sgd":
        optimizer = torch.optim.SGD([parameter], lr=0.1, momentum=0.9)
        read = lambda group: group["momentum"]  # noqa: E731
    else:
        optimizer = torch.optim.Adam([parameter], lr=0.1)
        read = lambda group: group["betas"][0]  # noqa: E731
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=1.0, cycle_momentum=True, **case
    )
    values = []
    for _ in range(case["total_steps"]):
        values.append(float(read(optimizer.param_groups[0])))
        parameter.grad = torch.ones(1)
        optimizer.step()
        scheduler.step()
    return values


def main():
    golden = {"torch_version": torch.__version__, "cases": []}
    for case in CASES:
        sgd, adam = momenta(case, "sgd"), momenta(case, "adam")
        assert sgd == adam
        golden["cases"].append({"arguments": case, "momentum": sgd})
    path = pathlib.Path(__file__).with_name("torch_golden_momentum.json")
    path.write_text(json.dumps(golden, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
