"""SIP signalling on pjsua2: the endpoint, the trunk account, call legs, reading SIP messages, and the fax media policy of a leg."""
