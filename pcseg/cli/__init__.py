"""The ``pcseg`` command line: one module per subcommand (``add_arguments`` + ``run``)."""
