"""Stages 1-2: screening configs, discovery, hygiene/liquidity and alpha gates."""
