/*
 * cli.h - command-line helpers shared by every program of nextframe.
 */
#ifndef NF_CLI_H
#define NF_CLI_H

/*
 * Parses s as a whole decimal number in [lo, hi] into *out. On failure
 * prints "PROG: --OPT: 'S' is not a number in LO..HI" to stderr and returns
 * NF_EINVAL; the caller decides whether to exit. Any thread.
 */
int nf_cli_number(const char *prog, const char *opt, const char *s, double lo,
                  double hi, double *out);

/*
 * Parses a --scale value: k/8 for k in 1..8, written as a fraction ("1/2",
 * "3/4", "6/8") or a decimal ("0.5"), into *scale8 = k. On failure prints
 * what is accepted to stderr and returns NF_EINVAL. Any thread.
 */
int nf_cli_scale(const char *prog, const char *s, int *scale8);

/*
 * Makes OpenMP's idle threads sleep instead of spin (OMP_WAIT_POLICY=
 * passive) unless the environment already chose a policy. libgomp reads
 * the variable only when it loads, so this sets it and re-executes the
 * program (/proc/self/exe, same argv); it returns only when nothing was
 * done or the re-exec failed. Call it first thing in main(), from the only
 * thread. Why: with the default policy an idle team spins on its cores,
 * and on a busy machine the oneDNN backend then runs about 3x slower
 * (kernels/dnnl/README.md, "Thread plan"). A build without OpenMP does
 * nothing.
 */
void nf_cli_omp_passive(char **argv);

#endif /* NF_CLI_H */
