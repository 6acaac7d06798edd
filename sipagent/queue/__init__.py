"""The ACD runtime: turns acdcore's actions into SIP and media and feeds the outcomes back; queue entries, hold, callbacks, queue statistics."""
