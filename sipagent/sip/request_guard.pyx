# cython: language_level=3, boundscheck=False, wraparound=False
"""The first look at every SIP request: a pjsip module ahead of pjsua's.

Theory of operation
-------------------
pjsua answers requests on its own: SUBSCRIBE gets 200 and a stream of
NOTIFYs to whatever Contact the sender names, MESSAGE gets 200, OPTIONS gets
200 from anyone, and a request it has no handler for is dropped without an
answer.  pjsua2 offers no hook that sees all of them, so this module sits
in pjsip's own pipeline, at a priority after the transaction layer (so
retransmissions of a request already answered statefully, and ACKs of
non-2xx answers, are absorbed before they get here) and before the UA layer
(which matches dialogs, and already answers 481 to a request whose To tag
names no dialog).

A request outside a dialog (no To tag) is refused when:
  - its source address is outside ``[trunk] allow``: 403;
  - its method is not one the engine serves outside a dialog: 405 (a SIP
    method the engine knows) or 501 (any other), both with ``Allow``; BYE,
    PRACK and UPDATE, which only exist inside a dialog, get 481.
Any request, in a dialog or not, is refused with 400 when it is malformed
in a way pjsip's parser lets through: a CSeq method that is not the
request's method (pjsua answered that with 500), a second From, To,
Call-ID, CSeq, Max-Forwards, Content-Length or Content-Type, or a
Content-Length larger than the body that arrived; a datagram that filled
pjsip's receive buffer (PJSIP_MAX_PKT_LEN, so it was cut short) gets 513.  An ACK is never
answered: one from a source not allowed is dropped here.

What pjsip's parser refuses (no Via, no Call-ID, a garbled header) never
reaches any module: pjsip drops it, unanswered, and logs it.

Every decision runs in C.  Only a refusal calls into Python (the
``on_rejected`` callable, with the GIL), so a flood costs one cheap call
per refused request; the engine counts and summarises them there.

All of this runs inside ``libHandleEvents``, on the loop thread (pjsua has
no worker threads here).  The engine's Allow capability (sent in pjsua's
own OPTIONS and INVITE answers) loses SUBSCRIBE, MESSAGE and PUBLISH when
the guard is installed, for the rest of the process: they are never served.
"""

import ipaddress

from libc.stdlib cimport malloc, free
from libc.string cimport memcmp, memset, memcpy, strlen

from sipagent.mediaports.pjmedia cimport pj_str_t, pj_str, pj_status_t, pj_bool_t, pj_pool_t, \
    PJ_SUCCESS
from sipagent.sip.pjsip cimport *

cdef extern from "string.h" nogil:
    void *memmem(const void *haystack, size_t hlen, const void *needle, size_t nlen)

cdef extern from *:
    """
    #define SIPACD_GUARD_PRIORITY (PJSIP_MOD_PRIORITY_UA_PROXY_LAYER - 1)
    """
    int SIPACD_GUARD_PRIORITY


# A verdict: what to answer, and the metric's reason label (REASONS).
cdef enum Verdict:
    V_PASS = -2           # on to the UA layer and pjsua
    V_DROP = -1           # absorbed unanswered (an ACK from a source not allowed)
    V_FORBIDDEN = 0
    V_BAD_CSEQ
    V_DUPLICATE_HEADER
    V_BAD_LENGTH
    V_TOO_LARGE
    V_NO_DIALOG
    V_NOT_ALLOWED
    V_NOT_IMPLEMENTED
    V_COUNT

# Index = Verdict: (status, reason phrase, metric reason).
ANSWERS = (
    (403, b"Forbidden", "forbidden"),
    (400, b"CSeq Method Does Not Match", "bad_request"),
    (400, b"Duplicate Header", "bad_request"),
    (400, b"Content-Length Exceeds Message", "bad_request"),
    (513, b"Message Too Large", "too_large"),
    (481, b"Call/Transaction Does Not Exist", "no_dialog"),
    (405, b"Method Not Allowed", "method_not_allowed"),
    (501, b"Not Implemented", "not_implemented"),
)
# Every reason label the guard reports, for metrics that want them all at 0.
REASONS = tuple(sorted({a[2] for a in ANSWERS}))

cdef int _STATUS[<int>V_COUNT]
cdef pj_str_t _PHRASE[<int>V_COUNT]
cdef bytes _phrases = b"\0".join(a[1] for a in ANSWERS) + b"\0"

# SIP methods the engine knows but never serves outside a dialog (405);
# any method that is neither these nor served is unknown (501).
cdef const char *_KNOWN_UNSERVED[7]
_KNOWN_UNSERVED[:] = [b"SUBSCRIBE", b"NOTIFY", b"MESSAGE", b"PUBLISH", b"REFER", b"INFO",
                      b"REGISTER"]
# Methods that exist only inside a dialog: outside one, 481.
cdef const char *_DIALOG_ONLY[2]
_DIALOG_ONLY[:] = [b"PRACK", b"UPDATE"]
# Never served at all: dropped from the endpoint's Allow capability.
_NEVER_SERVED = {b"SUBSCRIBE", b"MESSAGE", b"PUBLISH"}
# Each of these must appear once at most (RFC 3261 7.3.1, 20).
cdef pjsip_hdr_e _SINGLE[7]
_SINGLE[:] = [PJSIP_H_FROM, PJSIP_H_TO, PJSIP_H_CALL_ID, PJSIP_H_CSEQ, PJSIP_H_MAX_FORWARDS,
              PJSIP_H_CONTENT_LENGTH, PJSIP_H_CONTENT_TYPE]


cdef struct Network:
    int v6
    unsigned char prefix[16]
    int bits


# The one installed guard (pjsip holds a pointer to _module).
cdef pjsip_module _module
cdef pjsip_endpoint *_endpt = NULL
cdef pj_pool_t *_pool = NULL
cdef pjsip_hdr *_allow_list = NULL      # response headers for 405/501: Allow
cdef Network *_networks = NULL
cdef int _n_networks = 0
cdef object _on_rejected = None
cdef bytes _allow_value = b""
cdef bytes _module_name = b"mod-sipacd-guard"


cdef bint _name_in(const pj_str_t *name, const char **table, int n) noexcept nogil:
    cdef int i
    cdef size_t k
    for i in range(n):
        k = strlen(table[i])
        if <size_t>name.slen == k and memcmp(name.ptr, table[i], k) == 0:
            return True
    return False


cdef bint _source_allowed(pjsip_rx_data *rdata) noexcept nogil:
    cdef const pj_sockaddr *src = &rdata.pkt_info.src_addr
    cdef int v6 = src.addr.sa_family == pj_AF_INET6()
    cdef const unsigned char *addr = <const unsigned char *>pj_sockaddr_get_addr(src)
    cdef int i, whole, rest
    cdef Network *net
    for i in range(_n_networks):
        net = &_networks[i]
        if net.v6 != v6:
            continue
        whole = net.bits // 8
        rest = net.bits % 8
        if memcmp(addr, net.prefix, whole) != 0:
            continue
        if rest and ((addr[whole] ^ net.prefix[whole]) & (0xFF << (8 - rest)) & 0xFF):
            continue
        return True
    return False


cdef bint _has_duplicates(pjsip_msg *msg) noexcept nogil:
    cdef int seen[7]
    cdef int i
    cdef pjsip_hdr *h = msg.hdr.next
    memset(seen, 0, sizeof(seen))
    while h != &msg.hdr:
        for i in range(7):
            if h.type == _SINGLE[i]:
                seen[i] += 1
                if seen[i] > 1:
                    return True
        h = h.next
    return False


cdef long _body_length(pjsip_rx_data *rdata) noexcept nogil:
    """Bytes after the blank line that ends the headers (0 without one)."""
    cdef const char *buf = rdata.msg_info.msg_buf
    cdef long n = rdata.msg_info.len
    cdef const char *end = <const char *>memmem(buf, n, b"\r\n\r\n", 4)
    if end != NULL:
        return n - (end + 4 - buf)
    end = <const char *>memmem(buf, n, b"\n\n", 2)
    if end != NULL:
        return n - (end + 2 - buf)
    return 0


cdef Verdict _judge(pjsip_rx_data *rdata) noexcept nogil:
    cdef pjsip_method *method = &rdata.msg_info.msg.line.req.method
    cdef bint in_dialog = rdata.msg_info.to.tag.slen > 0
    if method.id == PJSIP_ACK_METHOD:
        return V_PASS if in_dialog or _source_allowed(rdata) else V_DROP
    if not in_dialog and not _source_allowed(rdata):
        return V_FORBIDDEN
    # pjsip spells a method it knows its own way ("options" is OPTIONS);
    # any other method must match to the letter.
    if pj_strcmp(&method.name, &rdata.msg_info.cseq.method.name) != 0:
        return V_BAD_CSEQ
    if _has_duplicates(rdata.msg_info.msg):
        return V_DUPLICATE_HEADER
    if rdata.pkt_info.len >= PJSIP_MAX_PKT_LEN:
        return V_TOO_LARGE            # the datagram filled pjsip's buffer: cut short
    # pjsip keeps Content-Length in an int: 3000000000 arrives negative.
    if rdata.msg_info.clen != NULL and (rdata.msg_info.clen.len < 0
                                        or rdata.msg_info.clen.len > _body_length(rdata)):
        return V_BAD_LENGTH
    if in_dialog:
        return V_PASS
    if method.id in (PJSIP_INVITE_METHOD, PJSIP_CANCEL_METHOD, PJSIP_OPTIONS_METHOD):
        return V_PASS
    if method.id == PJSIP_BYE_METHOD or _name_in(&method.name, _DIALOG_ONLY, 2):
        return V_NO_DIALOG
    if _name_in(&method.name, _KNOWN_UNSERVED, 7):
        return V_NOT_ALLOWED
    return V_NOT_IMPLEMENTED


cdef pj_bool_t _on_rx_request(pjsip_rx_data *rdata) noexcept nogil:
    cdef Verdict v = _judge(rdata)
    if v == V_PASS:
        return False
    if v == V_DROP:
        return True
    pjsip_endpt_respond_stateless(
        _endpt, rdata, _STATUS[<int>v], &_PHRASE[<int>v],
        _allow_list if v in (V_NOT_ALLOWED, V_NOT_IMPLEMENTED) else NULL, NULL)
    with gil:
        _report(v, rdata)
    return True


cdef void _report(Verdict v, pjsip_rx_data *rdata) noexcept:
    cdef pj_str_t *name = &rdata.msg_info.msg.line.req.method.name
    if _on_rejected is None:
        return
    try:
        # A method name is the sender's text: bounded before it is logged.
        method = name.ptr[:min(name.slen, 32)].decode("ascii", "replace")
        _on_rejected(ANSWERS[<int>v][2], method, rdata.pkt_info.src_name.decode("ascii"))
    except BaseException as exc:   # a pjsip callback must never raise
        import sys
        print(f"request_guard: on_rejected failed: {exc!r}", file=sys.stderr)


cdef _narrow_allow_capability():
    """Drop the methods never served from the endpoint's Allow; returns
    what remains, as one header value."""
    cdef pjsip_generic_array_hdr *cap = <pjsip_generic_array_hdr *>pjsip_endpt_get_capability(
        _endpt, PJSIP_H_ALLOW, NULL)
    cdef unsigned i, kept = 0
    if cap == NULL:
        return b"INVITE, ACK, CANCEL, BYE, OPTIONS"
    for i in range(cap.count):
        if cap.values[i].ptr[:cap.values[i].slen] not in _NEVER_SERVED:
            cap.values[kept] = cap.values[i]
            kept += 1
    cap.count = kept
    return b", ".join(cap.values[i].ptr[:cap.values[i].slen] for i in range(kept))


def _fill_answers():
    cdef const char *phrase = _phrases
    for i, (code, text, _reason) in enumerate(ANSWERS):
        _STATUS[i] = code
        _PHRASE[i] = pj_str(<char *>phrase)
        phrase += len(text) + 1


_fill_answers()


def install(allow, on_rejected) -> None:
    """Put the guard in front of pjsua: call after ``libStart``, on the
    thread that polls pjsua.  ``allow``: CIDR strings (the trunk's
    allow-list); ``on_rejected(reason, method, source)`` is called for each
    refused request."""
    global _endpt, _pool, _allow_list, _networks, _n_networks, _on_rejected, _allow_value
    cdef pjsip_endpoint *endpt = pjsua_get_pjsip_endpt()
    cdef pj_str_t hname, hvalue
    cdef pj_status_t status
    if _endpt != NULL:
        raise RuntimeError("the request guard is already installed")
    if endpt == NULL:
        raise RuntimeError("pjsua is not running")
    nets = [ipaddress.ip_network(a) for a in allow]
    _networks = <Network *>malloc(max(1, len(nets)) * sizeof(Network))
    if _networks == NULL:
        raise MemoryError()
    for i, net in enumerate(nets):
        memset(&_networks[i], 0, sizeof(Network))
        packed = net.network_address.packed
        _networks[i].v6 = net.version == 6
        memcpy(_networks[i].prefix, <const char *>packed, len(packed))
        _networks[i].bits = net.prefixlen
    _n_networks = len(nets)
    _endpt = endpt
    _on_rejected = on_rejected
    _allow_value = _narrow_allow_capability()
    _pool = pjsip_endpt_create_pool(endpt, "sipacd-guard", 512, 512)
    hname = pj_str(b"Allow")
    hvalue = pj_str(<char *>_allow_value)
    _allow_list = <pjsip_hdr *>pj_pool_alloc(_pool, sizeof(pjsip_hdr))
    pj_list_init(_allow_list)
    pj_list_push_back(_allow_list, pjsip_generic_string_hdr_create(_pool, &hname, &hvalue))
    memset(&_module, 0, sizeof(_module))
    _module.name = pj_str(<char *>_module_name)
    _module.id = -1
    _module.priority = SIPACD_GUARD_PRIORITY
    _module.on_rx_request = _on_rx_request
    status = pjsip_endpt_register_module(endpt, &_module)
    if status != PJ_SUCCESS:
        _release()
        raise RuntimeError(f"pjsip refused the request guard module (status {status})")


def uninstall() -> None:
    """Take the guard out again (before ``libDestroy``); a no-op when it is not in."""
    if _endpt == NULL:
        return
    pjsip_endpt_unregister_module(_endpt, &_module)
    _release()


cdef _release():
    global _endpt, _pool, _allow_list, _networks, _n_networks, _on_rejected
    if _pool != NULL:
        pjsip_endpt_release_pool(_endpt, _pool)
    _pool = NULL
    _allow_list = NULL
    free(_networks)
    _networks = NULL
    _n_networks = 0
    _on_rejected = None
    _endpt = NULL


def allow_header() -> str:
    """The Allow value sent with 405 and 501 (empty before install)."""
    return _allow_value.decode("ascii")
