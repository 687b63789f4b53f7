"""Subcommands of ``opennac``; see ``nas.cli``."""
