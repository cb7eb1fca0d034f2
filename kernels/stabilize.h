/*
 * stabilize.h - drift correction's operations on 8-bit frames (correct.h,
 * operations 3 and 4: the motion map and temporal stabilization), on rows
 * of a frame, with AVX2 where the CPU has it (the same bytes as the plain
 * code). The "dnnl" backend splits a frame's rows over its threads;
 * kernels/temporal.c runs them itself where the backend does not
 * (nf_backend_stabilizes).
 *
 * Threads: any; calls on disjoint row ranges of one frame may run at once.
 */
#ifndef NF_STABILIZE_H
#define NF_STABILIZE_H

#include "backend.h"

/*
 * Rows [y0, y1) of operation 3 on in (width x height; m's buffers are
 * packed at that size): writes m->motion, m->beta (if set, with the
 * correction's decay) and m->copy.
 */
void nf_stab_motion_rows(const struct nf_corr_motion *m, float decay,
                         const struct nf_image *in, int y0, int y1);

/* Rows [y0, y1) of operation 4 on out, in place, with s's buffers (packed
 * at out's size). */
void nf_stab_rows(const struct nf_corr_stab *s, const struct nf_image *out,
                  int y0, int y1);

#endif /* NF_STABILIZE_H */
