"""Device choice as in A1111: `--use-cpu <task|all>` forces the CPU, otherwise the best device (CPU here)."""

import torch

from modules import shared

cpu = torch.device("cpu")
dtype = torch.float32 if shared.cmd_opts.no_half else torch.float16
optimal_device = cpu  # tests replace this to pretend a GPU is present
gc_calls = 0


def get_optimal_device():
    return optimal_device


def get_device_for(task):
    if task in shared.cmd_opts.use_cpu or "all" in shared.cmd_opts.use_cpu:
        return cpu
    return get_optimal_device()


def torch_gc():
    global gc_calls
    gc_calls += 1
