# Actions out of the Cython Scheduler: what one event produces, returned
# by handle/handle_raw as a list.
#
# Why a C buffer and not a list appended to: the list is built once, at its
# exact size, when the event is done (a list grown from empty reallocates on
# its first append), and each action goes in with the reference its
# allocation made (no count up and down around a temporary).  Actions are
# NamedTuples: allocated as the subtype directly and filled (what
# tuple.__new__ does, minus the temporary argument tuple).

cdef extern from "Python.h":
    PyObject* _alloc_action "PyType_GenericAlloc"(PyTypeObject* t, Py_ssize_t n) except NULL
    void _tuple_put "PyTuple_SET_ITEM"(PyObject* p, Py_ssize_t pos, PyObject* o)
    PyObject* _new_list "PyList_New"(Py_ssize_t n)
    void _list_put "PyList_SET_ITEM"(PyObject* p, Py_ssize_t pos, PyObject* o)


cdef int _push_action(Scheduler self, PyObject* r) except -1:
    """Appends ``r``, taking over the caller's reference."""
    cdef PyObject** grown
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
    cdef PyObject* r = _alloc_action(<PyTypeObject*>kind, 1)
    Py_INCREF(a)
    _tuple_put(r, 0, <PyObject*>a)
    return _push_action(self, r)


cdef inline int _emit2(Scheduler self, type kind, object a, object b) except -1:
    cdef PyObject* r = _alloc_action(<PyTypeObject*>kind, 2)
    Py_INCREF(a)
    Py_INCREF(b)
    _tuple_put(r, 0, <PyObject*>a)
    _tuple_put(r, 1, <PyObject*>b)
    return _push_action(self, r)


cdef inline int _emit3(Scheduler self, type kind, object a, object b, object c) except -1:
    cdef PyObject* r = _alloc_action(<PyTypeObject*>kind, 3)
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
    cdef Py_ssize_t i, n = self.n_acts
    cdef PyObject* lst = _new_list(n)
    if lst == NULL:
        _drop_actions(self)
        raise MemoryError()
    for i in range(n):
        _list_put(lst, i, self.acts[i])
    self.n_acts = 0
    cdef list out = <list>lst   # a second reference: drop the one PyList_New made
    Py_DECREF(out)
    return out
