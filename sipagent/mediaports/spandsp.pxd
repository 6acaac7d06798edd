# The parts of spandsp (Debian libspandsp 0.0.6) that sipacd uses: the
# audio FAX terminal (T.30 over V.21/V.27ter/V.29/V.17 modems), its T.30
# settings, phase handlers and statistics, logging, G.711, and the modem
# connect tones (CNG: a fax machine calling).

from libc.stdint cimport int16_t, uint8_t


cdef extern from "spandsp.h" nogil:
    # --- logging -------------------------------------------------------------
    ctypedef struct logging_state_t:
        pass
    enum:
        SPAN_LOG_NONE
        SPAN_LOG_ERROR
        SPAN_LOG_WARNING
        SPAN_LOG_PROTOCOL_ERROR
        SPAN_LOG_PROTOCOL_WARNING
        SPAN_LOG_FLOW
        SPAN_LOG_SHOW_TAG
        SPAN_LOG_SHOW_PROTOCOL
        SPAN_LOG_SHOW_SAMPLE_TIME
    int span_log_set_level(logging_state_t *s, int level)
    int span_log_set_tag(logging_state_t *s, const char *tag)

    # --- G.711 (static inline in the header) -------------------------------------
    uint8_t linear_to_alaw(int linear)
    int16_t alaw_to_linear(uint8_t alaw)
    uint8_t linear_to_ulaw(int linear)
    int16_t ulaw_to_linear(uint8_t ulaw)

    # --- T.30 ----------------------------------------------------------------------
    ctypedef struct t30_state_t:
        pass

    enum:
        T30_MAX_IDENT_LEN
        T30_ERR_OK

    enum:
        T30_SUPPORT_V27TER
        T30_SUPPORT_V29
        T30_SUPPORT_V17
    enum:
        T30_SUPPORT_T4_1D_COMPRESSION
        T30_SUPPORT_T4_2D_COMPRESSION
        T30_SUPPORT_T6_COMPRESSION
    enum:
        T30_SUPPORT_STANDARD_RESOLUTION
        T30_SUPPORT_FINE_RESOLUTION
        T30_SUPPORT_SUPERFINE_RESOLUTION
        T30_SUPPORT_R8_RESOLUTION
        T30_SUPPORT_R16_RESOLUTION
    enum:
        T30_SUPPORT_215MM_WIDTH
        T30_SUPPORT_255MM_WIDTH
        T30_SUPPORT_303MM_WIDTH
        T30_SUPPORT_UNLIMITED_LENGTH
        T30_SUPPORT_A4_LENGTH
        T30_SUPPORT_B4_LENGTH
        T30_SUPPORT_US_LETTER_LENGTH
        T30_SUPPORT_US_LEGAL_LENGTH
    enum:
        T4_COMPRESSION_ITU_T4_1D
        T4_COMPRESSION_ITU_T4_2D
        T4_COMPRESSION_ITU_T6

    ctypedef struct t30_stats_t:
        int bit_rate
        int error_correcting_mode
        int pages_tx
        int pages_rx
        int pages_in_file
        int x_resolution
        int y_resolution
        int width
        int length
        int image_size
        int encoding
        int bad_rows
        int longest_bad_row_run
        int error_correcting_mode_retries
        int current_status

    ctypedef int (*t30_phase_b_handler_t)(t30_state_t *s, void *user_data, int result) noexcept nogil
    ctypedef int (*t30_phase_d_handler_t)(t30_state_t *s, void *user_data, int result) noexcept nogil
    ctypedef void (*t30_phase_e_handler_t)(t30_state_t *s, void *user_data, int completion_code) noexcept nogil

    int t30_set_tx_ident(t30_state_t *s, const char *id)
    const char *t30_get_rx_ident(t30_state_t *s)
    int t30_set_tx_page_header_info(t30_state_t *s, const char *info)
    void t30_set_rx_file(t30_state_t *s, const char *file, int stop_page)
    void t30_set_tx_file(t30_state_t *s, const char *file, int start_page, int stop_page)
    int t30_set_ecm_capability(t30_state_t *s, int enabled)
    int t30_set_rx_encoding(t30_state_t *s, int encoding)
    int t30_set_supported_modems(t30_state_t *s, int supported_modems)
    int t30_set_supported_compressions(t30_state_t *s, int supported_compressions)
    int t30_set_supported_resolutions(t30_state_t *s, int supported_resolutions)
    int t30_set_supported_image_sizes(t30_state_t *s, int supported_image_sizes)
    void t30_set_phase_b_handler(t30_state_t *s, t30_phase_b_handler_t handler, void *user_data)
    void t30_set_phase_d_handler(t30_state_t *s, t30_phase_d_handler_t handler, void *user_data)
    void t30_set_phase_e_handler(t30_state_t *s, t30_phase_e_handler_t handler, void *user_data)
    void t30_get_transfer_statistics(t30_state_t *s, t30_stats_t *t)
    void t30_terminate(t30_state_t *s)
    int t30_call_active(t30_state_t *s)
    logging_state_t *t30_get_logging_state(t30_state_t *s)
    const char *t30_completion_code_to_str(int result)

    # --- the audio FAX terminal ------------------------------------------------------
    ctypedef struct fax_state_t:
        pass
    fax_state_t *fax_init(fax_state_t *s, int calling_party)
    int fax_free(fax_state_t *s)
    int fax_rx(fax_state_t *s, int16_t *amp, int len)
    int fax_tx(fax_state_t *s, int16_t *amp, int max_len)
    void fax_set_transmit_on_idle(fax_state_t *s, int transmit_on_idle)
    void fax_set_tep_mode(fax_state_t *s, int use_tep)
    t30_state_t *fax_get_t30_state(fax_state_t *s)
    logging_state_t *fax_get_logging_state(fax_state_t *s)

    # --- modem connect tones (modem_connect_tones.h, super_tone_rx.h) -----------------
    enum:
        MODEM_CONNECT_TONES_NONE
        MODEM_CONNECT_TONES_FAX_CNG

    # `code` is the tone now present (MODEM_CONNECT_TONES_NONE: it stopped),
    # `level` its power in dBm0.
    ctypedef void (*tone_report_func_t)(void *user_data, int code, int level, int delay) noexcept nogil

    ctypedef struct modem_connect_tones_rx_state_t:
        pass
    modem_connect_tones_rx_state_t *modem_connect_tones_rx_init(modem_connect_tones_rx_state_t *s,
                                                                int tone_type,
                                                                tone_report_func_t tone_callback,
                                                                void *user_data)
    int modem_connect_tones_rx(modem_connect_tones_rx_state_t *s, const int16_t *amp, int len)
    int modem_connect_tones_rx_get(modem_connect_tones_rx_state_t *s)
    int modem_connect_tones_rx_free(modem_connect_tones_rx_state_t *s)

    ctypedef struct modem_connect_tones_tx_state_t:
        pass
    modem_connect_tones_tx_state_t *modem_connect_tones_tx_init(modem_connect_tones_tx_state_t *s,
                                                                int tone_type)
    int modem_connect_tones_tx(modem_connect_tones_tx_state_t *s, int16_t *amp, int len)
    int modem_connect_tones_tx_free(modem_connect_tones_tx_state_t *s)
