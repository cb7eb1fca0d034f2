/*
 * backend-dnnl.h - hooks of the oneDNN backend for tests and benchmarks
 * (implementer-only; the backend itself is reached through backend.h as
 * "dnnl"). Declared only when the build has the backend (NF_HAVE_DNNL).
 */
#ifndef NF_BACKEND_DNNL_H
#define NF_BACKEND_DNNL_H

struct nf_model;
struct nf_backend;

/*
 * Runs m's graph once on the oneDNN backend with float inputs, as
 * nf__cpu_run_float() does on the reference (same arguments and results),
 * with `threads` as nf_backend_init's hint.
 */
int nf__dnnl_run_float(const struct nf_model *m, int threads,
                       const float *frame, const float *const *cache, int h,
                       int w, float *out);

/* Per-step timing of a "dnnl" backend b: on (1) resets and starts it. */
void nf__dnnl_profile(struct nf_backend *b, int on);

/* One program step as nf__dnnl_profile_report() describes it. */
struct nf_dnnl_profile_line {
    const char *kind; /* "conv", "pixel", "resample", "norm", "halo", "expr". */
    const char *node; /* The last graph node the step computes. */
    double ms;        /* Mean per profiled frame. */
    const char *impl; /* oneDNN implementation of a conv, else NULL. */
    double flops;     /* Of a conv on its stored grid (halo included). */
    int mode_threads; /* Team size of the last frame. */
};

/* Fills line for step i of b; returns 0 past the last step. */
int nf__dnnl_profile_report(const struct nf_backend *b, int i,
                            struct nf_dnnl_profile_line *line);

#endif /* NF_BACKEND_DNNL_H */
