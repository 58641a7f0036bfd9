"""Counts measured on a built model (fvcore's FLOPs and activations, numel params): the reference the analytic twin must equal."""

from __future__ import annotations

import warnings

from .spec import NetSpec


def measure(spec: NetSpec, resolution: int | None = None) -> dict[str, int]:
    """Build `spec`, trace it once at batch 1 in eval mode and return fvcore's flops/acts and numel params."""
    import torch
    from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis

    from .build import build

    if resolution is not None and resolution != spec.resolution:
        spec = spec.replace(resolution=resolution)
    model = build(spec).eval()
    x = torch.zeros(1, spec.in_channels, spec.resolution, spec.resolution)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # jit tracer warnings
        flops = FlopCountAnalysis(model, x)
        acts = ActivationCountAnalysis(model, x)
        for analysis in (flops, acts):
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
        return {
            "flops": int(flops.total()),
            "params": sum(p.numel() for p in model.parameters()),
            "acts": int(acts.total()),
            "resolution": spec.resolution,
        }
