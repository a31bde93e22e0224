"""The Headstart SDK: the `headstart` command line (``headstart.sdk.cli``)."""
