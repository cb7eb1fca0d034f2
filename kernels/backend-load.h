/*
 * backend-load.h - backends that live in a shared library loaded at run
 * time (implementer-only).
 *
 * The CUDA backend (kernels/cuda/) is built as its own library,
 * libnf-cuda.so, so that the server binary never links the CUDA runtime
 * and starts on machines without one. backend-load.c finds it, dlopen()s
 * it, resolves the one table it exports and asks it whether a device
 * exists; the registry in backend.c sees the result as an ordinary backend
 * named "cuda" that may be unavailable, with the reason kept for a log line.
 *
 * Where the library is looked for: $NF_CUDA_LIB if set (that path only),
 * else libnf-cuda.so in the directory of the running executable
 * (/proc/self/exe), which is where the Makefile puts it (build/).
 */
#ifndef NF_BACKEND_LOAD_H
#define NF_BACKEND_LOAD_H

#include "backend-impl.h"

/* The symbol libnf-cuda.so exports: a const struct nf_backend_i. */
#define NF_CUDA_SYMBOL "nf_cuda_backend"
#define NF_CUDA_LIB    "libnf-cuda.so"

/*
 * The registry's "cuda" entry: a table that forwards to the loaded
 * library's. Its available() loads the library on first use (once per
 * process; the library is never unloaded) and returns 1 only if the library
 * loaded, exports NF_CUDA_SYMBOL and reports a usable device.
 */
extern const struct nf_backend_i nf__backend_cuda;

/*
 * Why "cuda" is unavailable, one line such as "cuda: no CUDA device
 * (cudaGetDeviceCount: CUDA driver version is insufficient for CUDA runtime
 * version)", or NULL if it is available. Loads the library first if that
 * has not happened yet. Any thread; the string is static.
 */
const char *nf__cuda_why(void);

/*
 * Another symbol of the loaded library (tests use "nf__cuda_run_float"),
 * or NULL when the library did not load or lacks it. Any thread.
 */
void *nf__cuda_symbol(const char *name);

/*
 * What a "cuda" backend did, from its exported nf__cuda_stats(b, &st)
 * (resolve it with nf__cuda_symbol): for tests and bench/nf-cuda-bench.c.
 */
struct nf_cuda_stats {
    long passes;    /* Batched forward passes run. */
    long items;     /* Items they carried (items / passes: mean batch). */
    long captures;  /* Passes captured as a CUDA graph. */
    long replays;   /* Passes replayed from a captured graph. */
    long direct;    /* Frames uploaded straight from page-locked memory. */
    int graphs;     /* 1 if graph capture is on (NF_CUDA_GRAPHS). */
    int half;       /* 1 in the reduced-precision mode (NF_CUDA_HALF). */
    int find;       /* 1 if algorithms are chosen by timing (NF_CUDA_FIND). */
    int convs;      /* Convolutions prepared for the last pass ... */
    int tensor_ops; /* ... of which on tensor-core math. */
};
typedef void (*nf_cuda_stats_fn)(const struct nf_backend *b,
                                 struct nf_cuda_stats *out);

#endif /* NF_BACKEND_LOAD_H */
