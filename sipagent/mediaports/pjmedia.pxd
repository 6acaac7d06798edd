# The parts of pjlib / pjmedia / pjsua that sipacd's C media ports use.
#
# One declaration file per C library (uvloop's includes/uv.pxd is the model).
# The extension must link the *shared* libpj*.so that pjsua2's _pjsua2 module
# uses: with static copies each module would have its own pjsua_var and the
# conference bridge calls below would act on an uninitialised library.

from libc.stdint cimport int16_t, uint32_t


cdef extern from "pjsua-lib/pjsua.h" nogil:
    ctypedef int pj_status_t
    ctypedef int pj_bool_t
    ctypedef long pj_ssize_t
    ctypedef size_t pj_size_t

    int PJ_SUCCESS

    ctypedef struct pj_str_t:
        char *ptr
        pj_ssize_t slen

    pj_str_t pj_str(char *s)

    ctypedef struct pj_pool_t:
        pass

    void pj_pool_release(pj_pool_t *pool)

    pj_bool_t pj_thread_is_registered()
    void pj_strerror(pj_status_t statcode, char *buf, pj_size_t bufsize)

    # --- pjmedia -----------------------------------------------------------
    ctypedef enum pjmedia_frame_type:
        PJMEDIA_FRAME_TYPE_NONE
        PJMEDIA_FRAME_TYPE_AUDIO
        PJMEDIA_FRAME_TYPE_EXTENDED

    ctypedef struct pj_timestamp:
        pass

    ctypedef struct pjmedia_frame:
        pjmedia_frame_type type
        void *buf
        pj_size_t size
        pj_timestamp timestamp
        uint32_t bit_info

    ctypedef struct pjmedia_port_info:
        pj_str_t name
        uint32_t signature

    struct port_data:
        void *pdata
        long ldata

    ctypedef struct pjmedia_port:
        pjmedia_port_info info
        port_data port_data
        pj_status_t (*put_frame)(pjmedia_port *this_port, pjmedia_frame *frame) nogil
        pj_status_t (*get_frame)(pjmedia_port *this_port, pjmedia_frame *frame) nogil
        pj_status_t (*on_destroy)(pjmedia_port *this_port) nogil

    uint32_t PJMEDIA_SIG_CLASS_PORT_AUD(char c, char d)

    pj_status_t pjmedia_port_info_init(pjmedia_port_info *info, const pj_str_t *name,
                                       unsigned signature, unsigned clock_rate,
                                       unsigned channel_count, unsigned bits_per_sample,
                                       unsigned samples_per_frame)

    # --- pjsua's conference bridge -------------------------------------------
    ctypedef int pjsua_conf_port_id
    int PJSUA_INVALID_ID

    pj_pool_t *pjsua_pool_create(const char *name, pj_size_t init_size, pj_size_t increment)
    pj_status_t pjsua_conf_add_port(pj_pool_t *pool, pjmedia_port *port,
                                    pjsua_conf_port_id *p_id)
    pj_status_t pjsua_conf_remove_port(pjsua_conf_port_id port_id)
    pj_status_t pjsua_conf_connect(pjsua_conf_port_id source, pjsua_conf_port_id sink)
    pj_status_t pjsua_conf_disconnect(pjsua_conf_port_id source, pjsua_conf_port_id sink)


# pjsua's live media configuration.  pjsua2 2.12.1's SWIG wrapper cannot
# set jbDiscardAlgo (it treats the enum as an opaque type), yet every new
# stream copies it from here; pjsua_get_var() is pjsua's own accessor.
cdef extern from "pjsua-lib/pjsua_internal.h" nogil:
    ctypedef enum pjmedia_jb_discard_algo:
        PJMEDIA_JB_DISCARD_NONE
        PJMEDIA_JB_DISCARD_STATIC
        PJMEDIA_JB_DISCARD_PROGRESSIVE

    ctypedef struct pjsua_media_config:
        int jb_init
        int jb_min_pre
        int jb_max_pre
        int jb_max
        pjmedia_jb_discard_algo jb_discard_algo

    struct pjsua_data:
        pjsua_media_config media_cfg

    pjsua_data *pjsua_get_var()


# Our C hooks in pjsua's callback table.  pjsua calls its callbacks through
# pjsua_var.ua_cfg.cb at run time, so a hook put in front of one after
# libInit (which installs pjsua2's own) sees every event; it must call the
# callback it replaced (`next`).  Idempotent, and again after a
# libDestroy/libCreate cycle.  Runs in the pjsua2 thread.
cdef extern from *:
    """
    #include <pjsua-lib/pjsua_internal.h>
    #define SIPACD_CHAIN_PJSUA_CALLBACK(field, hook, next) do {          \\
            struct pjsua_data *var_ = pjsua_get_var();                  \\
            if (var_->ua_cfg.cb.field != &hook) {                        \\
                next = var_->ua_cfg.cb.field;                            \\
                var_->ua_cfg.cb.field = &hook;                           \\
            }                                                            \\
        } while (0)
    """
