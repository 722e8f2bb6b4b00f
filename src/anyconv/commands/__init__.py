"""Subcommands of the ``anyconv`` command line (one module each; see ``anyconv.cli``)."""
