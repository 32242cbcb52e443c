"""Audio I/O and signal helpers shared by every stage."""
