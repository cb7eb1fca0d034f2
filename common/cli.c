/* cli.c - command-line helpers (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "error.h"

int nf_cli_number(const char *prog, const char *opt, const char *s, double lo,
                  double hi, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi)) {
        fprintf(stderr, "%s: --%s: '%s' is not a number in %g..%g\n", prog, opt,
                s, lo, hi);
        return NF_EINVAL;
    }
    *out = v;
    return 0;
}

int nf_cli_scale(const char *prog, const char *s, int *scale8)
{
    int a, b, n = 0;
    double v = -1.0;
    char *end;

    if (sscanf(s, "%d/%d%n", &a, &b, &n) == 2 && s[n] == '\0' && b > 0) {
        v = (double)a / b;
    } else {
        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end == s || *end != '\0')
            v = -1.0;
    }
    v *= 8.0;
    if (!(v >= 1.0 && v <= 8.0) || v != (double)(int)v) {
        fprintf(stderr,
                "%s: --scale: '%s' is not k/8 of the frame size: use 1/8, "
                "1/4, 3/8, 1/2, 5/8, 3/4, 7/8 or 1 (or 0.125 ... 1)\n",
                prog, s);
        return NF_EINVAL;
    }
    *scale8 = (int)v;
    return 0;
}

void nf_cli_omp_passive(char **argv)
{
#ifdef NF_HAVE_DNNL
    if (getenv("OMP_WAIT_POLICY") != NULL ||
        setenv("OMP_WAIT_POLICY", "passive", 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* Not re-executed (no /proc?): go on with the policy libgomp chose. */
#else
    (void)argv;
#endif
}
