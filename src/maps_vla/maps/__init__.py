"""MAPS: module-wise proximity scheduling of SPD (selective projection decay) for VLA fine-tuning."""
