/*
 * backend-load.c - the "cuda" registry entry: loads libnf-cuda.so at run
 * time (backend-load.h says where it is looked for and why).
 *
 * Loading happens once per process, on the first call that needs it, under
 * pthread_once. Every failure (library missing, a dependency such as cuDNN
 * missing, no symbol, no driver, no device) leaves the backend unavailable
 * with a one-line reason; nothing here prints, the server logs the reason
 * (nf_backend_why_unavailable). The library is never dlclose()d: the CUDA
 * runtime it carries registers process exit handlers.
 *
 * The table nf__backend_cuda forwards every call to the library's table.
 * backend.c only calls init, and through it the rest, after available()
 * returned 1, so the forwarders never run without a loaded library.
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend-load.h"

/* Written once by load() under `once`; read-only afterwards. */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static void *handle;                       /* dlopen() handle, or NULL. */
static const struct nf_backend_i *lib;     /* The library's table if usable. */
static char why[768] = "cuda: not loaded"; /* Reason when lib is NULL. */

/* The library's path into buf: $NF_CUDA_LIB or beside the executable. */
static int lib_path(char *buf, size_t len)
{
    const char *env = getenv("NF_CUDA_LIB");
    if (env != NULL && env[0] != '\0') {
        int n = snprintf(buf, len, "%s", env);
        return n > 0 && (size_t)n < len ? 0 : -1;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    int m = snprintf(buf, len, "%s/%s", exe, NF_CUDA_LIB);
    return m > 0 && (size_t)m < len ? 0 : -1;
}

static void load(void)
{
    char path[PATH_MAX + 32];
    if (lib_path(path, sizeof path) < 0) {
        snprintf(why, sizeof why,
                 "cuda: cannot tell where %s is (set NF_CUDA_LIB)",
                 NF_CUDA_LIB);
        return;
    }
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        const char *e = dlerror();
        /* Bounded: a path and dlerror() fit, an absurd one is cut. */
        snprintf(why, sizeof why, "cuda: cannot load the library: %.700s",
                 e ? e : path);
        return;
    }
    const struct nf_backend_i *t = dlsym(handle, NF_CUDA_SYMBOL);
    if (t == NULL || t->name == NULL || strcmp(t->name, "cuda") != 0 ||
        t->init == NULL || t->predict == NULL) {
        snprintf(why, sizeof why, "cuda: %.700s does not export a cuda backend",
                 path);
        return;
    }
    if (t->available != NULL && !t->available()) {
        const char *r = t->unavailable_reason ? t->unavailable_reason() : NULL;
        snprintf(why, sizeof why, "cuda: %.700s", r ? r : "no CUDA device");
        return;
    }
    why[0] = '\0';
    lib = t;
}

static const struct nf_backend_i *loaded(void)
{
    pthread_once(&once, load);
    return lib;
}

const char *nf__cuda_why(void)
{
    return loaded() ? NULL : why;
}

void *nf__cuda_symbol(const char *name)
{
    loaded();
    return handle ? dlsym(handle, name) : NULL;
}

static int cuda_available(void)
{
    return loaded() != NULL;
}

static const char *cuda_unavailable_reason(void)
{
    return nf__cuda_why();
}

static int cuda_supports(const struct nf_model *m)
{
    const struct nf_backend_i *t = loaded();
    return t != NULL && (t->supports == NULL || t->supports(m));
}

static int cuda_init(struct nf_backend *b, int threads)
{
    return lib->init(b, threads);
}

static void cuda_free(struct nf_backend *b)
{
    lib->free(b);
}

static int cuda_slot_new(struct nf_backend *b, struct nf_slot *s)
{
    return lib->slot_new(b, s);
}

static void cuda_slot_free(struct nf_backend *b, struct nf_slot *s)
{
    lib->slot_free(b, s);
}

static void cuda_slot_reset(struct nf_backend *b, struct nf_slot *s)
{
    lib->slot_reset(b, s);
}

static int cuda_predict(struct nf_backend *b, struct nf_predict_item *items,
                        int n)
{
    return lib->predict(b, items, n);
}

static void *cuda_host_alloc(size_t bytes)
{
    return lib->host_alloc != NULL ? lib->host_alloc(bytes) : NULL;
}

static void cuda_host_free(void *p)
{
    lib->host_free(p);
}

const struct nf_backend_i nf__backend_cuda = {
    .name = "cuda",
    .corrections = 1, /* The library applies them (kernels/cuda/). */
    .available = cuda_available,
    .unavailable_reason = cuda_unavailable_reason,
    .supports = cuda_supports,
    .init = cuda_init,
    .free = cuda_free,
    .slot_new = cuda_slot_new,
    .slot_free = cuda_slot_free,
    .slot_reset = cuda_slot_reset,
    .predict = cuda_predict,
    .host_alloc = cuda_host_alloc,
    .host_free = cuda_host_free,
};
