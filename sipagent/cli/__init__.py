"""The `sipacd` command: run, check, demo, flows, report, fax, erlang."""
