# Actions out of the Cython Scheduler: what one event produces, returned
# by handle/handle_raw as a list.
#
# Why a C buffer and not a list appended to: the list is built once, at its
# exact size, when the event is done (a list grown from empty reallocates on
# its first append), and each action goes in with the reference its
# allocation made (no count up and down around a temporary).  Actions are
# NamedTuples: allocated as the subtype directly and filled (what
# tuple.__new__ does, minus the temporary argument tuple).

cdef extern from *:
    """
    /* An action of ``n`` fields, not yet tracked by the GC: the caller fills
       every field, then tracks it (no zeroing pass, as tuple's own alloc). */
    static CYTHON_INLINE PyObject* acd_action_alloc(PyTypeObject* kind, Py_ssize_t n) {
        return (PyObject*)_PyObject_GC_NewVar(kind, n);
    }

    /* A list holding the ``n`` references in ``items`` (taken over): its item
       array allocated once at size n, not zeroed first (PyList_New(n) does). */
    static PyObject* acd_list_of(PyObject** items, Py_ssize_t n) {
        PyObject* lst = PyList_New(0);
        PyObject** a;
        if (lst == NULL || n == 0) return lst;
        a = (PyObject**)PyMem_Malloc((size_t)n * sizeof(PyObject*));
        if (a == NULL) {
            Py_DECREF(lst);
            return PyErr_NoMemory();
        }
        for (Py_ssize_t i = 0; i < n; i++)   /* mostly one or two: no memcpy call */
            a[i] = items[i];
        ((PyListObject*)lst)->ob_item = a;
        ((PyListObject*)lst)->allocated = n;
        Py_SET_SIZE(lst, n);
        return lst;
    }
    """
    PyObject* acd_action_alloc(PyTypeObject* kind, Py_ssize_t n) except NULL
    PyObject* acd_list_of(PyObject** items, Py_ssize_t n)

cdef extern from "Python.h":
    void _tuple_put "PyTuple_SET_ITEM"(PyObject* p, Py_ssize_t pos, PyObject* o)
    void _gc_track "PyObject_GC_Track"(PyObject* o)


cdef int _push_action(Scheduler self, PyObject* r) except -1:
    """Tracks the filled action ``r`` and appends it, taking over the caller's
    reference."""
    cdef PyObject** grown
    _gc_track(r)
    if self.n_acts == self.cap_acts:
        grown = <PyObject**>realloc(self.acts, 2 * self.cap_acts * sizeof(PyObject*))
        if grown == NULL:
            Py_DECREF(<object>r)
            raise MemoryError()
        self.acts = grown
        self.cap_acts *= 2
    self.acts[self.n_acts] = r
    self.n_acts += 1
    return 0


cdef inline int _emit1(Scheduler self, type kind, object a) except -1:
    cdef PyObject* r = acd_action_alloc(<PyTypeObject*>kind, 1)
    Py_INCREF(a)
    _tuple_put(r, 0, <PyObject*>a)
    return _push_action(self, r)


cdef inline int _emit2(Scheduler self, type kind, object a, object b) except -1:
    cdef PyObject* r = acd_action_alloc(<PyTypeObject*>kind, 2)
    Py_INCREF(a)
    Py_INCREF(b)
    _tuple_put(r, 0, <PyObject*>a)
    _tuple_put(r, 1, <PyObject*>b)
    return _push_action(self, r)


cdef inline int _emit3(Scheduler self, type kind, object a, object b, object c) except -1:
    cdef PyObject* r = acd_action_alloc(<PyTypeObject*>kind, 3)
    Py_INCREF(a)
    Py_INCREF(b)
    Py_INCREF(c)
    _tuple_put(r, 0, <PyObject*>a)
    _tuple_put(r, 1, <PyObject*>b)
    _tuple_put(r, 2, <PyObject*>c)
    return _push_action(self, r)


cdef void _drop_actions(Scheduler self) noexcept:
    cdef Py_ssize_t i
    for i in range(self.n_acts):
        Py_DECREF(<object>self.acts[i])
    self.n_acts = 0


cdef list _take_actions(Scheduler self):
    """The event's actions as a new list; the buffer is left empty."""
    cdef PyObject* lst = acd_list_of(self.acts, self.n_acts)
    if lst == NULL:
        _drop_actions(self)
        raise MemoryError()
    self.n_acts = 0
    cdef list out = <list>lst   # a second reference: drop the one acd_list_of made
    Py_DECREF(out)
    return out
