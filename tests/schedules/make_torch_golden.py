"""Writes torch_golden.json: PyTorch's OneCycleLR and CyclicLR learning rates, step by step.

Run by hand where torch is installed (CI does not need torch; the tests read the JSON):

    python tests/schedules/make_torch_golden.py

Step mapping: `lr[t]` is `optimizer.param_groups[0]["lr"]` when PyTorch's optimizer takes its (t + 1)-th step,
i.e. before the t-th `scheduler.step()`. A Keras optimizer calls its schedule with `iterations = t` on its
(t + 1)-th step, so tfopt's `schedule(t)` must equal `lr[t]`.

Each case stores tfopt's arguments ("kwargs"); `torch_kwargs` translates them to PyTorch's names.
"""

import json
import os

import torch

ONE_CYCLE_CASES = [
    dict(max_learning_rate=0.1, total_steps=100),
    dict(max_learning_rate=0.1, total_steps=100, anneal_strategy="linear"),
    dict(max_learning_rate=0.01, total_steps=57, pct_start=0.25, div_factor=10.0, final_div_factor=100.0,
         three_phase=True),
    dict(max_learning_rate=0.01, total_steps=57, pct_start=0.4, anneal_strategy="linear", three_phase=True),
    dict(max_learning_rate=1.0, total_steps=20, pct_start=0.5, three_phase=True),
    dict(max_learning_rate=0.5, total_steps=7, pct_start=0.3, div_factor=5.0, final_div_factor=50.0),
    # pct_start * total_steps < 1: PyTorch skips the warm-up phase entirely.
    dict(max_learning_rate=0.5, total_steps=3, pct_start=0.25, anneal_strategy="linear"),
    dict(max_learning_rate=0.5, total_steps=1, pct_start=0.3),
]

CYCLIC_CASES = [
    dict(base_learning_rate=0.001, max_learning_rate=0.1, step_size_up=5),
    dict(base_learning_rate=0.001, max_learning_rate=0.1, step_size_up=4, step_size_down=6, mode="triangular2"),
    dict(base_learning_rate=0.0, max_learning_rate=0.3, step_size_up=3, mode="triangular2"),
    dict(base_learning_rate=0.01, max_learning_rate=0.1, step_size_up=5, mode="exp_range", gamma=0.99),
    dict(base_learning_rate=0.01, max_learning_rate=0.1, step_size_up=3, step_size_down=7, mode="exp_range",
         gamma=0.95),
    dict(base_learning_rate=0.2, max_learning_rate=0.7, step_size_up=1, step_size_down=1),
    dict(base_learning_rate=0.05, max_learning_rate=0.5, step_size_up=7, step_size_down=2),
]


def one_cycle_torch_kwargs(kwargs):
    return dict(
        max_lr=kwargs["max_learning_rate"],
        total_steps=kwargs["total_steps"],
        pct_start=kwargs.get("pct_start", 0.3),
        anneal_strategy=kwargs.get("anneal_strategy", "cos"),
        div_factor=kwargs.get("div_factor", 25.0),
        final_div_factor=kwargs.get("final_div_factor", 1e4),
        three_phase=kwargs.get("three_phase", False),
        cycle_momentum=False,
    )


def cyclic_torch_kwargs(kwargs):
    return dict(
        base_lr=kwargs["base_learning_rate"],
        max_lr=kwargs["max_learning_rate"],
        step_size_up=kwargs["step_size_up"],
        step_size_down=kwargs.get("step_size_down"),
        mode=kwargs.get("mode", "triangular"),
        gamma=kwargs.get("gamma", 1.0),
        cycle_momentum=False,
    )


def learning_rates(scheduler_class, torch_kwargs, steps):
    """The learning rate of each of the first `steps` optimizer steps."""
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    scheduler = scheduler_class(optimizer, **torch_kwargs)
    rates = []
    for _ in range(steps):
        rates.append(float(optimizer.param_groups[0]["lr"]))
        parameter.grad = torch.ones(1)
        optimizer.step()
        scheduler.step()
    return rates


def main():
    golden = {"torch_version": torch.__version__, "OneCycle": [], "CyclicalLearningRate": []}
    for kwargs in ONE_CYCLE_CASES:
        torch_kwargs = one_cycle_torch_kwargs(kwargs)
        # OneCycleLR refuses to go past total_steps: every step it allows.
        rates = learning_rates(torch.optim.lr_scheduler.OneCycleLR, torch_kwargs, kwargs["total_steps"])
        golden["OneCycle"].append({"kwargs": kwargs, "torch_kwargs": torch_kwargs, "lr": rates})
    for kwargs in CYCLIC_CASES:
        torch_kwargs = cyclic_torch_kwargs(kwargs)
        cycle = kwargs["step_size_up"] + (kwargs.get("step_size_down") or kwargs["step_size_up"])
        rates = learning_rates(torch.optim.lr_scheduler.CyclicLR, torch_kwargs, 4 * cycle + 3)
        golden["CyclicalLearningRate"].append({"kwargs": kwargs, "torch_kwargs": torch_kwargs, "lr": rates})
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_golden.json")
    with open(path, "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
