"""The flow test kit's parts: the caller's script, the fake world (mailboxes, fax),
the record of a run, virtual time, and the fake call itself.  Flow authors use
them through :mod:`ivrflows.testing`, which runs a flow and re-exports what a
test needs."""
