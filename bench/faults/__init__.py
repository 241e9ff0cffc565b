"""The fault-injection and security harness (issue 22): one command, a quick mode for the suite, a full
mode that writes docs/reliability.md. See `python -m bench.faults --help`."""
