"""Fax: the document library, fax records and two-call jobs, the dialer, fax on calls (service and flow verbs), notifications and metrics."""
