"""Layer 0: what every other layer may use: errors, paths, provenance and the generic registry."""
