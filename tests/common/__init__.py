"""Helpers shared by test modules of more than one file or tier (synthetic audio, tiny model
assets, a running stack, service URLs). Fixtures live in the tiers' conftest.py files; test
modules import helpers only from here, never from another test module or a conftest."""
