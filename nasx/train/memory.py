"""Whether a training run can fit: a lower bound of the bytes it needs, from the analytic counts, against the
memory of the machine it runs on; refused before anything is allocated."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..units import human

__all__ = ["MemoryNeed", "machine_memory"]

FP32 = 4  # bytes of a weight or an activation


@dataclass(frozen=True)
class MemoryNeed:
    """Less than a run needs: its images resized (uint8), the largest net's weights and one batch's forward
    activations (fp32); gradients, optimizer state and workspace come on top."""

    data: int = 0
    weights: int = 0
    activations: int = 0

    @classmethod
    def of(cls, *, images: int = 0, channels: int = 0, side: int = 0, params: int = 0, acts: int = 0,
           batch: int = 1) -> "MemoryNeed":
        """From the counts: `images` of `channels` x `side`^2 bytes, `params` weights, `acts` per image x `batch`."""
        return cls(images * channels * side * side, FP32 * params, FP32 * batch * acts)

    @property
    def total(self) -> int:
        return self.data + self.weights + self.activations

    def refusal(self, memory: int) -> str | None:
        """None when it may fit in `memory` bytes; else why not, in words."""
        if self.total <= memory:
            return None
        parts = [f"{what} {human(n)}B" for what, n in (("the images resized", self.data), ("weights", self.weights),
                                                       ("one batch's activations", self.activations)) if n]
        return (f"needs at least {human(self.total)}B ({', '.join(parts)}), more than the {human(memory)}B this "
                f"machine has")


def machine_memory(gpus: tuple[int, ...] = ()) -> int:
    """Bytes of RAM, plus the memory of the CUDA devices `gpus` (indices) where the run trains on them."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if gpus:
        import torch

        total += sum(torch.cuda.get_device_properties(i).total_memory for i in gpus)
    return total
