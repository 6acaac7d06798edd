"""Simulated phones and fax machines: real SIP user agents, each in its own
process, driven over JSON lines on stdin/stdout.  The tests, the benchmarks and
``sipacd demo`` (its callers and agents) use them; sipagent never imports them."""
