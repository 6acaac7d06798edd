# handle_raw, the per-event entry point of Scheduler and InternedScheduler,
# as a METH_FASTCALL C method.
#
# Why not a ``def``: Cython parses a def's arguments for keywords too and
# takes a new reference to each of the seven (and drops them on return),
# about 150 instructions per event -- a tenth of a whole event on the
# runtime's path.  handle_raw is positional-only, so a plain C function
# reads the arguments where they lie, converts the three C ones, and calls
# the Cython body (_scheduler_raw / _interned_raw).  Calling convention,
# defaults and errors are those of the def it replaces:
# ``handle_raw(code, t, call_id=None, agent_id=None, ev=None, queue=None,
# priority=0, /)``; keywords are refused (TypeError) as before.

cdef extern from *:
    """
    typedef PyObject* (*acd_raw_body)(PyObject*, int, double, PyObject*, PyObject*,
                                      PyObject*, PyObject*, int);

    static CYTHON_INLINE int acd_c_int(PyObject* o, int* out) {
        long long small;
        long v;
        if (PyLong_CheckExact(o) && acd_small_int(o, &small)) {   /* one digit: fits */
            *out = (int)small;
            return 0;
        }
        v = PyLong_AsLong(o);
        if (v == -1 && PyErr_Occurred()) return -1;
        if (v < INT_MIN || v > INT_MAX) {
            PyErr_SetString(PyExc_OverflowError, "value too large to convert to int");
            return -1;
        }
        *out = (int)v;
        return 0;
    }

    static PyObject* acd_raw_call(acd_raw_body body, PyObject* self, PyObject* const* args,
                                  Py_ssize_t nargs) {
        int code, priority = 0;
        double t;
        if (nargs < 2 || nargs > 7) {
            PyErr_Format(PyExc_TypeError,
                         "handle_raw() takes from 2 to 7 positional arguments (%zd given)",
                         nargs);
            return NULL;
        }
        if (acd_c_int(args[0], &code) < 0) return NULL;
        if (PyFloat_CheckExact(args[1])) {
            t = PyFloat_AS_DOUBLE(args[1]);
        } else {
            t = PyFloat_AsDouble(args[1]);
            if (t == -1.0 && PyErr_Occurred()) return NULL;
        }
        if (nargs == 7 && acd_c_int(args[6], &priority) < 0) return NULL;
        return body(self, code, t,
                    nargs > 2 ? args[2] : Py_None, nargs > 3 ? args[3] : Py_None,
                    nargs > 4 ? args[4] : Py_None, nargs > 5 ? args[5] : Py_None, priority);
    }

    static acd_raw_body acd_raw_bodies[2];

    static PyObject* acd_raw_0(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
        return acd_raw_call(acd_raw_bodies[0], self, args, nargs);
    }

    static PyObject* acd_raw_1(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
        return acd_raw_call(acd_raw_bodies[1], self, args, nargs);
    }

    static PyMethodDef acd_raw_defs[2] = {
        {"handle_raw", (PyCFunction)(void(*)(void))acd_raw_0, METH_FASTCALL, NULL},
        {"handle_raw", (PyCFunction)(void(*)(void))acd_raw_1, METH_FASTCALL, NULL},
    };

    /* Puts the C method in ``type``'s dict as handle_raw (slot i of 2). */
    static int acd_install_raw(PyTypeObject* type, int i, acd_raw_body body, const char* doc) {
        PyObject* descr;
        int rc;
        acd_raw_bodies[i] = body;
        acd_raw_defs[i].ml_doc = doc;
        descr = PyDescr_NewMethod(type, &acd_raw_defs[i]);
        if (descr == NULL) return -1;
        rc = PyDict_SetItemString(type->tp_dict, "handle_raw", descr);
        Py_DECREF(descr);
        PyType_Modified(type);
        return rc;
    }
    """
    ctypedef object (*acd_raw_body)(object, int, double, object, object, object, object, int)
    int acd_install_raw(PyTypeObject* type, int i, acd_raw_body body, const char* doc) except -1


cdef object _scheduler_raw(object obj, int code, double t, object call_id, object agent_id,
                           object ev, object queue, int priority):
    # obj is a Scheduler: the method descriptor checked it.
    return _handle(<Scheduler>obj, code, t, ev, call_id, agent_id, queue, priority, True)


cdef object _interned_raw(object obj, int code, double t, object call_id, object agent_id,
                          object ev, object queue, int priority):
    cdef InternedScheduler self = <InternedScheduler>obj
    cdef object cid, aid
    if ev is not None:
        cid, aid = self._ids_of(code, ev)
    else:
        if code == EV_CALL_ARRIVED and call_id is not None:
            cid = self.calls.key_at(self.calls.intern(call_id))
        else:
            cid = _key(self.calls, call_id)
        aid = _key(self.agents_t, agent_id)
    return self._run(code, t, ev, cid, aid, queue, priority)


acd_install_raw(<PyTypeObject*>Scheduler, 0, _scheduler_raw,
    b"handle_raw($self, code, t, call_id=None, agent_id=None, ev=None, queue=None, "
    b"priority=0, /)\n--\n\n"
    b"``handle`` without an event object (arguments are positional only:\n"
    b"cheaper to parse).  ``ev`` (optional) supplies the rarer fields:\n"
    b"skills, callback, pause/withdraw reason, busy.")
acd_install_raw(<PyTypeObject*>InternedScheduler, 1, _interned_raw,
    b"handle_raw($self, code, t, call_id=None, agent_id=None, ev=None, queue=None, "
    b"priority=0, /)\n--\n\n"
    b"``Scheduler.handle_raw`` with str ids (``ev``, when given, supplies\n"
    b"the ids too, as there).")
