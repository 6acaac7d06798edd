# The parts of libpjsip (and pjsua's accessor for its endpoint) that
# sipacd's SIP-level C code uses.
#
# One declaration file per C library, as sipagent/mediaports/pjmedia.pxd is
# for pjlib/pjmedia; the pj basics (pj_str_t, pools) are taken from there so
# that one extension never sees two declarations of the same C type.  Only
# the struct fields read here are declared: Cython emits member accesses, C
# knows the real layout.

from sipagent.mediaports.pjmedia cimport pj_str_t, pj_status_t, pj_bool_t, pj_pool_t, pj_size_t


cdef extern from "pjsua-lib/pjsua.h" nogil:
    ctypedef unsigned short pj_uint16_t

    ctypedef struct pj_addr_hdr:
        pj_uint16_t sa_family

    ctypedef union pj_sockaddr:
        pj_addr_hdr addr

    void *pj_pool_alloc(pj_pool_t *pool, pj_size_t size)

    pj_uint16_t pj_AF_INET()
    pj_uint16_t pj_AF_INET6()
    void *pj_sockaddr_get_addr(const pj_sockaddr *addr)
    unsigned pj_sockaddr_get_addr_len(const pj_sockaddr *addr)

    void pj_list_init(void *node)
    void pj_list_push_back(void *list, void *node)

    # --- messages ----------------------------------------------------------
    ctypedef enum pjsip_method_e:
        PJSIP_INVITE_METHOD
        PJSIP_CANCEL_METHOD
        PJSIP_ACK_METHOD
        PJSIP_BYE_METHOD
        PJSIP_REGISTER_METHOD
        PJSIP_OPTIONS_METHOD
        PJSIP_OTHER_METHOD

    ctypedef struct pjsip_method:
        pjsip_method_e id
        pj_str_t name

    int pj_strcmp(const pj_str_t *str1, const pj_str_t *str2)

    ctypedef enum pjsip_hdr_e:
        PJSIP_H_CALL_ID
        PJSIP_H_CONTENT_LENGTH
        PJSIP_H_CONTENT_TYPE
        PJSIP_H_CSEQ
        PJSIP_H_FROM
        PJSIP_H_MAX_FORWARDS
        PJSIP_H_TO
        PJSIP_H_ALLOW
        PJSIP_H_SUPPORTED

    ctypedef struct pjsip_hdr:
        pjsip_hdr *next
        pjsip_hdr_e type

    ctypedef struct pjsip_generic_array_hdr:
        unsigned count
        pj_str_t values[1]      # PJSIP_GENERIC_ARRAY_MAX_COUNT in C

    ctypedef struct pjsip_generic_string_hdr:
        pj_str_t hvalue

    pjsip_generic_string_hdr *pjsip_generic_string_hdr_create(
        pj_pool_t *pool, const pj_str_t *hname, const pj_str_t *hvalue)

    struct pjsip_request_line:
        pjsip_method method

    union pjsip_msg_line:
        pjsip_request_line req

    ctypedef struct pjsip_msg:
        pjsip_msg_line line
        pjsip_hdr hdr           # the list head

    ctypedef struct pjsip_cseq_hdr:
        int cseq
        pjsip_method method

    ctypedef struct pjsip_to_hdr:
        pj_str_t tag

    ctypedef struct pjsip_from_hdr:
        pj_str_t tag

    ctypedef struct pjsip_cid_hdr:
        pj_str_t id

    ctypedef struct pjsip_clen_hdr:
        int len

    # --- a received message ------------------------------------------------
    enum:
        PJSIP_MAX_PKT_LEN       # pjsip's receive buffer

    struct pjsip_rx_pkt_info:
        long len
        pj_sockaddr src_addr
        char *src_name          # a char array in C: read it, never assign

    struct pjsip_rx_msg_info:
        char *msg_buf
        int len
        pjsip_msg *msg
        pjsip_cseq_hdr *cseq
        pjsip_to_hdr *to
        pjsip_from_hdr *from_ "from"
        pjsip_cid_hdr *cid
        pjsip_clen_hdr *clen

    ctypedef struct pjsip_rx_data:
        pjsip_rx_pkt_info pkt_info
        pjsip_rx_msg_info msg_info

    # --- the endpoint and its modules --------------------------------------
    ctypedef struct pjsip_endpoint:
        pass

    ctypedef struct pjsip_transaction:
        pass

    ctypedef struct pjsip_event:
        pass

    ctypedef struct pjsip_module:
        pj_str_t name
        int id
        int priority
        pj_bool_t (*on_rx_request)(pjsip_rx_data *rdata) noexcept nogil
        void (*on_tsx_state)(pjsip_transaction *tsx, pjsip_event *event) noexcept nogil

    pjsip_endpoint *pjsua_get_pjsip_endpt()
    pj_status_t pjsip_endpt_register_module(pjsip_endpoint *endpt, pjsip_module *module)
    pj_status_t pjsip_endpt_unregister_module(pjsip_endpoint *endpt, pjsip_module *module)
    pj_pool_t *pjsip_endpt_create_pool(pjsip_endpoint *endpt, const char *name,
                                       pj_size_t initial, pj_size_t increment)
    void pjsip_endpt_release_pool(pjsip_endpoint *endpt, pj_pool_t *pool)
    const pjsip_hdr *pjsip_endpt_get_capability(pjsip_endpoint *endpt, int htype,
                                                const pj_str_t *hname)
    pj_status_t pjsip_endpt_respond_stateless(pjsip_endpoint *endpt, pjsip_rx_data *rdata,
                                              int st_code, const pj_str_t *st_text,
                                              const pjsip_hdr *hdr_list, const void *body)

    void *pjsip_msg_find_hdr_by_names(const pjsip_msg *msg, const pj_str_t *name,
                                      const pj_str_t *sname, const void *start)

    # --- dialogs (sipagent/sip/refer.pyx) --------------------------------
    ctypedef struct pjsip_dialog:
        pass

    ctypedef struct pjsip_tx_data:
        pass

    pjsip_dialog *pjsip_ua_find_dialog(const pj_str_t *call_id, const pj_str_t *local_tag,
                                       const pj_str_t *remote_tag, pj_bool_t lock_dialog)
    pjsip_dialog *pjsip_rdata_get_dlg(pjsip_rx_data *rdata)
    pj_status_t pjsip_dlg_add_usage(pjsip_dialog *dlg, pjsip_module *module, void *mod_data)
    pj_bool_t pjsip_dlg_has_usage(pjsip_dialog *dlg, pjsip_module *module)
    void pjsip_dlg_dec_lock(pjsip_dialog *dlg)
    pj_status_t pjsip_dlg_respond(pjsip_dialog *dlg, pjsip_rx_data *rdata, int st_code,
                                  const pj_str_t *st_text, const pjsip_hdr *hdr_list,
                                  const void *body)

    # --- the implicit subscription of a REFER (RFC 3515) ------------------
    ctypedef struct pjsip_evsub:
        pass

    ctypedef struct pjsip_evsub_user:
        pass

    ctypedef enum pjsip_evsub_state:
        PJSIP_EVSUB_STATE_ACTIVE
        PJSIP_EVSUB_STATE_TERMINATED

    pj_status_t pjsip_xfer_create_uas(pjsip_dialog *dlg, const pjsip_evsub_user *user_cb,
                                      pjsip_rx_data *rdata, pjsip_evsub **p_evsub)
    pj_status_t pjsip_xfer_accept(pjsip_evsub *sub, pjsip_rx_data *rdata, int st_code,
                                  const pjsip_hdr *hdr_list)
    pj_status_t pjsip_xfer_notify(pjsip_evsub *sub, pjsip_evsub_state state, int xfer_st_code,
                                  const pj_str_t *xfer_st_text, pjsip_tx_data **p_tdata)
    pj_status_t pjsip_xfer_send_request(pjsip_evsub *sub, pjsip_tx_data *tdata)
    pj_status_t pjsip_evsub_terminate(pjsip_evsub *sub, pj_bool_t notify)
