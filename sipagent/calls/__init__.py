"""The call object a flow drives over SIP, the services it may touch, and the flow library (loading and hot reload)."""
