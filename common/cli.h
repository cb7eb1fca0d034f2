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

#endif /* NF_CLI_H */
