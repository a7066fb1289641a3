# NumPy arrays whose data comes from nnc's memory cache (src_c/runtime/memcache.c):
# a NEP 49 data handler, installed only around nnc's own allocations.  The
# arrays are ordinary NumPy arrays (they keep a reference to the handler and
# give their data back to it when they die); a large block then stays
# resident for the next call instead of being faulted in afresh.
from cpython.pycapsule cimport PyCapsule_New
from libc.string cimport memset, strncpy

import numpy as _np

cdef extern from "numpy/arrayobject.h":
    ctypedef struct PyDataMemAllocator:
        void *ctx
        void *(*malloc)(void *ctx, size_t size) noexcept nogil
        void *(*calloc)(void *ctx, size_t nelem, size_t elsize) noexcept nogil
        void *(*realloc)(void *ctx, void *ptr, size_t new_size) noexcept nogil
        void (*free)(void *ctx, void *ptr, size_t size) noexcept nogil
    ctypedef struct PyDataMem_Handler:
        char name[127]
        unsigned char version
        PyDataMemAllocator allocator
    object PyDataMem_SetHandler(object handler)
    int _import_array() except -1


cdef void *_mem_malloc(void *ctx, size_t size) noexcept nogil:
    return nnc_aligned_alloc(size)


cdef void *_mem_calloc(void *ctx, size_t nelem, size_t elsize) noexcept nogil:
    if elsize and nelem > (<size_t>-1) // elsize:
        return NULL
    cdef void *p = nnc_aligned_alloc(nelem * elsize)
    if p:
        memset(p, 0, nelem * elsize)
    return p


cdef void *_mem_realloc(void *ctx, void *ptr, size_t new_size) noexcept nogil:
    return nnc_aligned_realloc(ptr, new_size)


cdef void _mem_free(void *ctx, void *ptr, size_t size) noexcept nogil:
    nnc_aligned_free(ptr)


_import_array()
cdef PyDataMem_Handler _mem_handler
strncpy(_mem_handler.name, b"nnc_memcache", 127)
_mem_handler.version = 1
_mem_handler.allocator.ctx = NULL
_mem_handler.allocator.malloc = _mem_malloc
_mem_handler.allocator.calloc = _mem_calloc
_mem_handler.allocator.realloc = _mem_realloc
_mem_handler.allocator.free = _mem_free
_mem_capsule = PyCapsule_New(<void *>&_mem_handler, "mem_handler", NULL)


cdef class memcache:
    """``with memcache():`` NumPy arrays allocated inside take their data
    from nnc's memory cache (Layer.forward/backward run inside one).  A new
    object per ``with``: nesting restores the handler of each level."""
    cdef object _old

    def __enter__(self):
        self._old = PyDataMem_SetHandler(_mem_capsule)
        return self

    def __exit__(self, *exc):
        PyDataMem_SetHandler(self._old)
        self._old = None
        return False


def set_cache_limit(size_t nbytes):
    return nnc_mem_set_cache_limit(nbytes)


def get_cache_limit():
    return nnc_mem_get_cache_limit()


def cached_bytes():
    return nnc_mem_cached_bytes()


def clear_cache():
    nnc_mem_clear_cache()
