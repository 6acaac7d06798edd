# cython: language_level=3, boundscheck=False, wraparound=False
"""REFER, answered by the engine rather than by pjsua.

Theory of operation
-------------------
pjsua answers a REFER in a call by placing a new call to the Refer-To
address itself and reporting that call's progress back; the application
can only refuse.  An agent's phone transferring a caller means something
else here: the queue runtime decides where the caller goes (a queue, an
agent, a flow, a number through the trunk), with its accounting.  So the
REFER is taken before pjsua sees it:

1. At endpoint level (priority ahead of the UA layer) an in-dialog REFER
   makes this module a *usage* of its dialog (found by Call-ID and tags),
   and goes on.
2. The dialog reports the request's transaction (state TRYING) to its
   usages in priority order; ours comes before the invite session's, and
   answers, so that pjsua, which acts only on a REFER still in TRYING,
   never sees one.  ``on_refer(handle, call_id, refer_to)`` (Python, with the GIL) decides:
   202 accepts; anything else is the answer (603, 501 ...) and nothing
   more happens.  The callable must only look things up and schedule work:
   it runs inside pjsua's event poll, with the dialog locked.
3. Accepted: the implicit subscription of RFC 3515 is created, answered 202
   and a first NOTIFY ("100 Trying") sent, as pjsua would.  The engine
   later reports the outcome with ``notify(handle, code)``: a final NOTIFY
   (200 ends the transferor's call on most phones).  ``drop(handle)`` ends
   the subscription silently (the call is gone).

Everything here runs on the loop thread, inside ``libHandleEvents``.
"""

from libc.string cimport memset

from sipagent.mediaports.pjmedia cimport pj_str_t, pj_str, pj_status_t, pj_bool_t, PJ_SUCCESS
from sipagent.sip.pjsip cimport *

cdef extern from *:
    """
    #define SIPACD_REFER_PRIORITY (PJSIP_MOD_PRIORITY_UA_PROXY_LAYER - 2)

    /* The REFER a dialog's new server transaction has just received, or
       NULL: what pjsua itself waits for before it acts on a REFER. */
    static pjsip_rx_data *sipacd_refer_received(pjsip_transaction *tsx, pjsip_event *e)
    {
        if (tsx->role != PJSIP_ROLE_UAS || tsx->state != PJSIP_TSX_STATE_TRYING)
            return NULL;
        if (e->type != PJSIP_EVENT_TSX_STATE || e->body.tsx_state.type != PJSIP_EVENT_RX_MSG)
            return NULL;
        if (pjsip_method_cmp(&tsx->method, pjsip_get_refer_method()) != 0)
            return NULL;
        return e->body.tsx_state.src.rdata;
    }
    """
    int SIPACD_REFER_PRIORITY
    pjsip_rx_data *sipacd_refer_received(pjsip_transaction *tsx, pjsip_event *e) nogil

DEF MAX_SUBS = 1024

cdef pjsip_module _module
cdef pjsip_endpoint *_endpt = NULL
cdef object _on_refer = None
cdef bytes _module_name = b"mod-sipacd-refer"
cdef pjsip_evsub *_subs[MAX_SUBS]
cdef int _next = 0
cdef bytes _refer_to = b"Refer-To"
cdef bytes _refer_to_short = b"r"


cdef bint _is_refer(pjsip_rx_data *rdata) noexcept nogil:
    cdef pj_str_t *name = &rdata.msg_info.msg.line.req.method.name
    return name.slen == 5 and name.ptr[0] == b'R' and name.ptr[1] == b'E' \
        and name.ptr[2] == b'F' and name.ptr[3] == b'E' and name.ptr[4] == b'R'


cdef pj_bool_t _on_rx_request(pjsip_rx_data *rdata) noexcept nogil:
    cdef pjsip_dialog *dlg
    if not _is_refer(rdata) or pjsip_rdata_get_dlg(rdata) != NULL:
        return False
    # Endpoint level: join the request's dialog, then let the UA layer route
    # the request to it.  Its transaction reaches TRYING only after every
    # usage saw the request, and only then may it be answered.
    if rdata.msg_info.to.tag.slen == 0 or rdata.msg_info.cid == NULL:
        return False
    dlg = pjsip_ua_find_dialog(&rdata.msg_info.cid.id, &rdata.msg_info.to.tag,
                               &rdata.msg_info.from_.tag, True)
    if dlg != NULL:
        if not pjsip_dlg_has_usage(dlg, &_module):
            pjsip_dlg_add_usage(dlg, &_module, NULL)
        pjsip_dlg_dec_lock(dlg)
    return False


cdef void _on_tsx_state(pjsip_transaction *tsx, pjsip_event *e) noexcept nogil:
    # As a usage, ahead of the invite session's: our answer moves the
    # transaction past TRYING before pjsua's own handler looks, so pjsua
    # (which acts only on a REFER still in TRYING) leaves it alone.
    cdef pjsip_rx_data *rdata = sipacd_refer_received(tsx, e)
    cdef pjsip_dialog *dlg
    if rdata == NULL:
        return
    dlg = pjsip_rdata_get_dlg(rdata)
    if dlg == NULL:
        return
    with gil:
        _take(dlg, rdata)


cdef pj_bool_t _take(pjsip_dialog *dlg, pjsip_rx_data *rdata) noexcept:
    global _next
    cdef pj_str_t name = pj_str(<char *>_refer_to)
    cdef pj_str_t short = pj_str(<char *>_refer_to_short)
    cdef pjsip_generic_string_hdr *h = <pjsip_generic_string_hdr *>pjsip_msg_find_hdr_by_names(
        rdata.msg_info.msg, &name, &short, NULL)
    cdef pjsip_evsub *sub = NULL
    cdef pjsip_tx_data *tdata = NULL
    cdef int handle, code
    if h == NULL:
        pjsip_dlg_respond(dlg, rdata, 400, NULL, NULL, NULL)
        return True
    handle = _next
    while _subs[handle] != NULL:      # a slot still in use: the next free one
        handle = (handle + 1) % MAX_SUBS
        if handle == _next:
            pjsip_dlg_respond(dlg, rdata, 503, NULL, NULL, NULL)
            return True
    _next = (handle + 1) % MAX_SUBS
    try:
        code = int(_on_refer(handle, rdata.msg_info.cid.id.ptr[:rdata.msg_info.cid.id.slen]
                             .decode("utf-8", "replace"),
                             h.hvalue.ptr[:h.hvalue.slen].decode("utf-8", "replace")))
    except BaseException as exc:   # a pjsip callback must never raise
        import sys
        print(f"refer: on_refer failed: {exc!r}", file=sys.stderr)
        code = 500
    if code != 202:
        pjsip_dlg_respond(dlg, rdata, code, NULL, NULL, NULL)
        return True
    if pjsip_xfer_create_uas(dlg, NULL, rdata, &sub) != PJ_SUCCESS:
        pjsip_dlg_respond(dlg, rdata, 500, NULL, NULL, NULL)
        return True
    pjsip_xfer_accept(sub, rdata, 202, NULL)
    if pjsip_xfer_notify(sub, PJSIP_EVSUB_STATE_ACTIVE, 100, NULL, &tdata) == PJ_SUCCESS:
        pjsip_xfer_send_request(sub, tdata)
    _subs[handle] = sub
    return True


def notify(int handle, int code, str reason=None) -> bool:
    """Tell the transferor how its transfer ended (a final NOTIFY) and end
    the subscription.  False if the handle is not live."""
    cdef pjsip_evsub *sub
    cdef pjsip_tx_data *tdata = NULL
    cdef bytes text
    cdef pj_str_t st_text
    if not 0 <= handle < MAX_SUBS or _subs[handle] == NULL:
        return False
    sub, _subs[handle] = _subs[handle], NULL
    text = (reason or "").encode("ascii", "replace")
    st_text = pj_str(<char *>text)
    if pjsip_xfer_notify(sub, PJSIP_EVSUB_STATE_TERMINATED, code,
                         &st_text if text else NULL, &tdata) != PJ_SUCCESS:
        pjsip_evsub_terminate(sub, False)
        return False
    pjsip_xfer_send_request(sub, tdata)
    return True


def drop(int handle) -> None:
    """End the subscription without a NOTIFY (its call is gone)."""
    cdef pjsip_evsub *sub
    if 0 <= handle < MAX_SUBS and _subs[handle] != NULL:
        sub, _subs[handle] = _subs[handle], NULL
        pjsip_evsub_terminate(sub, False)


cdef _withdraw_replaces(pjsip_endpoint *endpt):
    # An INVITE with a Replaces header (RFC 3891) is not served: do not
    # claim it in Supported.  (A REFER whose Refer-To carries Replaces is:
    # it names a consultation through the engine, sipagent/queue/phone_consult.py.)
    cdef pjsip_generic_array_hdr *cap = <pjsip_generic_array_hdr *>pjsip_endpt_get_capability(
        endpt, PJSIP_H_SUPPORTED, NULL)
    cdef unsigned i, kept = 0
    if cap == NULL:
        return
    for i in range(cap.count):
        if cap.values[i].ptr[:cap.values[i].slen] != b"replaces":
            cap.values[kept] = cap.values[i]
            kept += 1
    cap.count = kept


def install(on_refer) -> None:
    """Take REFERs from pjsua: after ``libStart``, on the polling thread.
    ``on_refer(handle, call_id, refer_to) -> int``: 202 or the refusal."""
    global _endpt, _on_refer
    cdef pjsip_endpoint *endpt = pjsua_get_pjsip_endpt()
    if _endpt != NULL:
        raise RuntimeError("REFER handling is already installed")
    if endpt == NULL:
        raise RuntimeError("pjsua is not running")
    memset(&_module, 0, sizeof(_module))
    memset(_subs, 0, sizeof(_subs))
    _module.name = pj_str(<char *>_module_name)
    _module.id = -1
    _module.priority = SIPACD_REFER_PRIORITY
    _module.on_rx_request = _on_rx_request
    _module.on_tsx_state = _on_tsx_state
    if pjsip_endpt_register_module(endpt, &_module) != PJ_SUCCESS:
        raise RuntimeError("pjsip refused the REFER module")
    _endpt = endpt
    _on_refer = on_refer
    _withdraw_replaces(endpt)


def uninstall() -> None:
    """Before ``libDestroy``; live subscriptions end silently."""
    global _endpt, _on_refer
    if _endpt == NULL:
        return
    for handle in range(MAX_SUBS):
        drop(handle)
    pjsip_endpt_unregister_module(_endpt, &_module)
    _endpt = NULL
    _on_refer = None
