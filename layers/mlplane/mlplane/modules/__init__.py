"""Optional modules of the control plane."""
