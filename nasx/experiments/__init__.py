"""Experiments built on studies: matched-complexity ablations (`ablate`), proxy fidelity (`fidelity`), design-space
refinement (`refine`) and search strategies at equal compute on a simulated clock (`simulate`)."""
