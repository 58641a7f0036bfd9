"""The `nasx` command line (`nasx.cli.app`): one module per command group over the Python API."""
