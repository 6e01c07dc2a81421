"""The ``irtcat`` command line (``irtcat.cli.main``); ``local`` holds the local-stack commands."""
