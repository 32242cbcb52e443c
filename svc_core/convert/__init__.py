"""Conversion: source vocals → the target voice (chunking, pitch, features, synthesis)."""
