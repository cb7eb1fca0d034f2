/*
 * nf-eval.c - long-run temporal evaluation of a model, no server needed.
 *
 * Runs a model over a .y4m clip (looped to reach N frames) exactly as a
 * server session would, through kernels/temporal.h with its corrections on
 * (or off with --no-correction), and measures every frame against the
 * anchor, the same model's output for the same input with a cold cache.
 * Writes the per-frame measures as CSV, a plot as a self-contained SVG,
 * and a summary of `name: value unit` lines on stdout. docs/TEMPORAL.md
 * defines every measure and the bounds that --check enforces.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "cli.h"
#include "error.h"
#include "i420.h"
#include "model.h"
#include "quality.h"
#include "temporal.h"
#include "y4m.h"

#define PROG "nf-eval"

/* The bounds of docs/TEMPORAL.md. */
#define BOUND_DRIFT_RATIO   1.10
#define BOUND_FLICKER_RATIO 0.50
/* Cells of the low-frequency drift column, in pixels. */
#define LF_CELL 16
/* Points per series in the plot. */
#define PLOT_BINS 500

struct options {
    const char *model, *input, *csv, *plot, *backend;
    const char *compare, *compare_label, *label, *from_csv;
    long long frames;
    long long window; /* 0: min(10000, frames / 10). */
    int loop, correct, check, quiet, threads, static_tol;
    struct nf_temporal_params params;
};

/* One frame's measures; the CSV row and what the summary and plot use. */
struct row {
    float psnr, drift, lf_drift, flicker_out, flicker_anchor, static_fraction;
    float session_drift;
    unsigned resets;
};

/* A series loaded back from a CSV (--compare), or this run's. */
struct series {
    size_t n;
    struct row *rows;
};

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, PROG ": ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " --model M --input VIDEO.y4m --frames N [--loop]\n"
            "               [--no-correction] --csv OUT.csv --plot OUT.svg "
            "[options]\n"
            "\n"
            "Runs model M over VIDEO (8-bit 4:2:0 .y4m; looped with --loop "
            "until N\n"
            "frames) as a server session would, and measures each output "
            "against\n"
            "the anchor (the same model, same input, cold cache). "
            "docs/TEMPORAL.md\n"
            "defines the measures.\n"
            "\n"
            "  --backend NAME       backend (default cpu)\n"
            "  --threads N          backend threads (default 0: its own)\n"
            "  --window N           frames of the first and last windows "
            "(default\n"
            "                       min(10000, N / 10))\n"
            "  --static-tol L       largest input change, in levels, of a "
            "static\n"
            "                       pixel for flicker (default 2)\n"
            "  --label TEXT         this run's name in the plot\n"
            "  --compare CSV        also plot a run written earlier "
            "(e.g. without\n"
            "                       correction), named --compare-label TEXT\n"
            "  --check              exit 1 unless the bounds of "
            "docs/TEMPORAL.md hold\n"
            "  --from-csv CSV       run nothing: summarize and plot (--plot) "
            "a CSV\n"
            "                       written earlier, even a partial one\n"
            "  --quiet              no progress lines on stderr\n"
            "\n"
            "Correction parameters (docs/TEMPORAL.md), --NAME VALUE:\n");
    for (int i = 0; nf_temporal_param_name(i) != NULL; i++) {
        struct nf_temporal_params d;
        double v;
        nf_temporal_params_default(&d);
        nf_temporal_param_get(&d, nf_temporal_param_name(i), &v);
        char opt[64];
        snprintf(opt, sizeof opt, "%s", nf_temporal_param_name(i));
        for (char *c = opt; *c; c++)
            *c = *c == '_' ? '-' : *c;
        fprintf(f, "  --%-20s default %g\n", opt, v);
    }
}

static double number(const char *opt, const char *s, double lo, double hi)
{
    double v;
    if (s == NULL)
        die("--%s needs a value", opt);
    if (nf_cli_number(PROG, opt, s, lo, hi, &v) < 0)
        exit(2);
    return v;
}

/* --anchor-every VALUE and friends: a parameter of temporal.h. */
static int param_option(struct options *o, const char *opt, const char *val)
{
    char name[64];
    if (strlen(opt) >= sizeof name)
        return 0;
    for (size_t i = 0; i <= strlen(opt); i++)
        name[i] = opt[i] == '-' ? '_' : opt[i];
    double cur;
    if (nf_temporal_param_get(&o->params, name, &cur) < 0)
        return 0;
    double v = number(opt, val, -1e9, 1e9);
    if (nf_temporal_param_set(&o->params, name, v) < 0)
        die("--%s: %g is out of range (see --help)", opt, v);
    return 1;
}

static void parse(struct options *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->backend = "cpu";
    o->correct = 1;
    o->static_tol = 2;
    nf_temporal_params_default(&o->params);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strncmp(a, "--", 2) != 0)
            die("unexpected argument '%s' (see --help)", a);
        a += 2;
        int used = 1; /* Options that take a value set used = 2. */
        if (!strcmp(a, "help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "loop")) {
            o->loop = 1;
        } else if (!strcmp(a, "no-correction")) {
            o->correct = 0;
        } else if (!strcmp(a, "check")) {
            o->check = 1;
        } else if (!strcmp(a, "quiet")) {
            o->quiet = 1;
        } else {
            used = 2;
            if (v == NULL)
                die("--%s needs a value", a);
            if (!strcmp(a, "model"))
                o->model = v;
            else if (!strcmp(a, "input"))
                o->input = v;
            else if (!strcmp(a, "csv"))
                o->csv = v;
            else if (!strcmp(a, "plot"))
                o->plot = v;
            else if (!strcmp(a, "backend"))
                o->backend = v;
            else if (!strcmp(a, "label"))
                o->label = v;
            else if (!strcmp(a, "compare"))
                o->compare = v;
            else if (!strcmp(a, "from-csv"))
                o->from_csv = v;
            else if (!strcmp(a, "compare-label"))
                o->compare_label = v;
            else if (!strcmp(a, "frames"))
                o->frames = (long long)number(a, v, 1, 1e9);
            else if (!strcmp(a, "window"))
                o->window = (long long)number(a, v, 1, 1e9);
            else if (!strcmp(a, "threads"))
                o->threads = (int)number(a, v, 0, 256);
            else if (!strcmp(a, "static-tol"))
                o->static_tol = (int)number(a, v, 0, 255);
            else if (!param_option(o, a, v))
                die("unknown option --%s (see --help)", a);
        }
        i += used - 1;
    }
    if (o->from_csv != NULL && o->plot != NULL)
        return; /* Replot: nothing runs. */
    if (!o->model || !o->input || !o->frames || !o->csv || !o->plot)
        die("--model, --input, --frames, --csv and --plot are required "
            "(see --help)");
    o->params.correct = o->correct;
    if (o->window == 0)
        o->window = o->frames / 10 < 10000 ? o->frames / 10 : 10000;
    if (o->window < 1)
        o->window = 1;
}

/* ---- Input --------------------------------------------------------- */

struct input {
    FILE *f;
    struct nf_y4m_reader *r;
    const struct nf_y4m_info *info;
    uint8_t *full; /* I420 scratch for limited-range input. */
    int loop;
};

static void input_open(struct input *in, const char *path, int loop)
{
    char err[256];
    memset(in, 0, sizeof *in);
    in->f = fopen(path, "rb");
    if (in->f == NULL)
        die("%s: cannot open", path);
    if (nf_y4m_reader_init(&in->r, in->f, err, sizeof err) < 0)
        die("%s: %s", path, err);
    in->info = nf_y4m_reader_info(in->r);
    in->loop = loop;
    if (!in->info->full_range &&
        (in->full = malloc(nf_i420_size(in->info->width, in->info->height))) ==
            NULL)
        die("out of memory");
}

/* Reads the next frame as full-range RGB into rgb. Returns 1 or 0 (end). */
static int input_read(struct input *in, uint8_t *rgb)
{
    const uint8_t *planes[3];
    int w = in->info->width, h = in->info->height;
    int rc = nf_y4m_reader_read(in->r, planes);
    if (rc == 0 && in->loop && nf_y4m_reader_frames(in->r) > 0) {
        if (nf_y4m_reader_rewind(in->r) < 0)
            die("--loop: %s", nf_y4m_reader_error(in->r));
        rc = nf_y4m_reader_read(in->r, planes);
    }
    if (rc < 0)
        die("input: %s", nf_y4m_reader_error(in->r));
    if (rc == 0)
        return 0;
    if (in->full != NULL) {
        /* y4m means limited range unless it says otherwise. */
        uint8_t *p[3];
        nf_i420_planes(in->full, w, h, p);
        nf_i420_limited_to_full(planes, w, h, p);
        for (int i = 0; i < 3; i++)
            planes[i] = p[i];
    }
    nf_i420_to_rgb(planes, w, h, rgb, 3 * w);
    return 1;
}

static void input_close(struct input *in)
{
    nf_y4m_reader_free(in->r);
    if (in->f != NULL)
        fclose(in->f);
    free(in->full);
}

/* ---- CSV ----------------------------------------------------------- */

static const char csv_header[] =
    "frame,psnr_db,drift,lf_drift,flicker_out,flicker_anchor,"
    "static_fraction,session_drift,resets\n";

static void csv_row(FILE *f, size_t i, const struct row *w)
{
    fprintf(f, "%zu,%.3f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%u\n", i, w->psnr,
            w->drift, w->lf_drift, w->flicker_out, w->flicker_anchor,
            w->static_fraction, w->session_drift, w->resets);
}

/* ---- The run ------------------------------------------------------- */

/* Three frames, each with its predecessor: input, output, anchor. */
struct frames {
    struct nf_image cur[3], prev[3];
};

static struct nf_image image_new(int w, int h)
{
    struct nf_image im = {calloc((size_t)w * h, 3), w, h, 3 * w};
    if (im.data == NULL)
        die("out of memory");
    return im;
}

struct run {
    const struct options *o;
    struct nf_model *model;
    struct nf_backend *b;
    struct nf_temporal *t;
    struct nf_slot *anchor_slot; /* For frames without the session's. */
    struct input in;
    struct frames fr;
    struct series s;
    FILE *csv;    /* Rows are written as they are measured. */
    int gw, gh;   /* The LF_CELL grid. */
    float *grids; /* (2, 3, gh, gw): output's and anchor's cell means. */
    double elapsed;
};

static void run_open(struct run *r, const struct options *o)
{
    char err[512];
    memset(r, 0, sizeof *r);
    r->o = o;
    if (nf_model_load(o->model, &r->model, err, sizeof err) < 0)
        die("%s", err);
    int rc = nf_backend_init(o->backend, r->model, o->threads, &r->b);
    if (rc < 0)
        die("backend '%s': %s", o->backend, nf_strerror(rc));
    if ((rc = nf_temporal_new(r->b, &o->params, &r->t)) < 0 ||
        (rc = nf_backend_slot_new(r->b, &r->anchor_slot)) < 0)
        die("%s", nf_strerror(rc));
    input_open(&r->in, o->input, o->loop);
    int w = r->in.info->width, h = r->in.info->height;
    for (int i = 0; i < 3; i++) {
        r->fr.cur[i] = image_new(w, h);
        r->fr.prev[i] = image_new(w, h);
    }
    r->gw = (w + LF_CELL - 1) / LF_CELL;
    r->gh = (h + LF_CELL - 1) / LF_CELL;
    r->grids = malloc(sizeof(float) * 6 * (size_t)r->gw * r->gh);
    r->s.rows = calloc((size_t)o->frames, sizeof *r->s.rows);
    if (r->s.rows == NULL || r->grids == NULL)
        die("out of memory");
    if ((r->csv = fopen(o->csv, "w")) == NULL)
        die("%s: cannot write", o->csv);
    fputs(csv_header, r->csv);
}

static void run_close(struct run *r)
{
    if (r->csv != NULL && fclose(r->csv) != 0)
        die("%s: write failed", r->o->csv);
    for (int i = 0; i < 3; i++) {
        free(r->fr.cur[i].data);
        free(r->fr.prev[i].data);
    }
    input_close(&r->in);
    nf_temporal_free(r->t);
    nf_backend_free(r->b);
    nf_model_free(r->model);
    free(r->s.rows);
    free(r->grids);
}

/*
 * One frame: the session's items plus, unless the session ran an anchor
 * this frame, our own cold-cache anchor, in one predict call.
 */
static void run_frame(struct run *r)
{
    struct nf_predict_item items[NF_TEMPORAL_MAX_ITEMS + 1];
    struct nf_image *in = &r->fr.cur[0], *out = &r->fr.cur[1];
    int n = nf_temporal_begin(r->t, in, out, items);
    if (n < 0)
        die("frame: %s", nf_strerror(n));
    int own = n == 1;
    if (own) {
        nf_backend_slot_reset(r->b, r->anchor_slot);
        items[n++] = (struct nf_predict_item){r->anchor_slot, in, &r->fr.cur[2],
                                              0, NULL};
    }
    nf_backend_predict(r->b, items, n);
    if (own && items[n - 1].status < 0)
        die("anchor: %s", nf_strerror(items[n - 1].status));
    int rc = nf_temporal_end(r->t, items, own ? n - 1 : n);
    if (rc == NF_EUNSUPPORTED)
        die("backend '%s' does not apply corrections (docs/TEMPORAL.md "
            "section 4): use --backend ref, or --no-correction",
            nf_backend_name(r->b));
    if (rc < 0)
        die("frame: %s", nf_strerror(rc));
    if (!own) {
        const struct nf_image *a = nf_temporal_anchor(r->t);
        if (a == NULL)
            die("anchor: the session's anchor failed");
        for (int y = 0; y < a->height; y++)
            memcpy(r->fr.cur[2].data + (size_t)y * r->fr.cur[2].stride,
                   a->data + (size_t)y * a->stride, (size_t)3 * a->width);
    }
}

static void measure(struct run *r, size_t i)
{
    struct row *w = &r->s.rows[i];
    const struct nf_image *out = &r->fr.cur[1], *anc = &r->fr.cur[2];
    struct nf_temporal_stats st;
    w->psnr = (float)nf_quality_psnr(out, anc);
    w->drift = (float)nf_quality_mae(out, anc);
    int cells = 3 * r->gw * r->gh;
    nf_quality_grid_mean(out, r->gw, r->gh, r->grids);
    nf_quality_grid_mean(anc, r->gw, r->gh, r->grids + cells);
    double s = 0;
    for (int k = 0; k < cells; k++)
        s += fabsf(r->grids[k] - r->grids[k + cells]);
    w->lf_drift = (float)(s / cells);
    if (i > 0) {
        uint64_t ns = 0;
        const struct nf_image *p = r->fr.prev;
        w->flicker_out = (float)nf_quality_flicker(&p[0], &r->fr.cur[0], &p[1],
                                                   out, r->o->static_tol, &ns);
        w->flicker_anchor = (float)nf_quality_flicker(
            &p[0], &r->fr.cur[0], &p[2], anc, r->o->static_tol, NULL);
        w->static_fraction =
            (float)((double)ns / ((double)out->width * out->height));
    }
    nf_temporal_get_stats(r->t, &st);
    w->session_drift = st.drift;
    w->resets = (unsigned)(st.resets_drift + st.resets_scene);
}

static void progress(const struct run *r, size_t done, double t0)
{
    double dt = now_s() - t0, fps = done / (dt > 0 ? dt : 1);
    double eta = (r->o->frames - (double)done) / (fps > 0 ? fps : 1);
    fprintf(stderr,
            PROG ": %zu/%lld frames (%.1f%%), %.1f frames/s, ETA %dm%02ds, "
                 "drift %.2f levels\n",
            done, r->o->frames, 100.0 * done / r->o->frames, fps,
            (int)(eta / 60), (int)eta % 60, r->s.rows[done - 1].drift);
}

static void run_all(struct run *r)
{
    double t0 = now_s(), next = t0 + 2;
    size_t i = 0;
    for (; i < (size_t)r->o->frames; i++) {
        struct frames *f = &r->fr;
        for (int k = 0; k < 3; k++) {
            struct nf_image tmp = f->prev[k];
            f->prev[k] = f->cur[k];
            f->cur[k] = tmp;
        }
        if (!input_read(&r->in, f->cur[0].data))
            break;
        run_frame(r);
        measure(r, i);
        csv_row(r->csv, i, &r->s.rows[i]);
        if (i % 1000 == 999)
            fflush(r->csv);
        if (!r->o->quiet && now_s() >= next) {
            progress(r, i + 1, t0);
            next = now_s() + 10;
        }
    }
    r->s.n = i;
    r->elapsed = now_s() - t0;
    if (i == 0)
        die("%s: no frames", r->o->input);
    if (!r->o->quiet)
        progress(r, i, t0);
}

/* ---- CSV ----------------------------------------------------------- */

/* Reads a CSV that an earlier run wrote (the header must match). */
static void csv_read(struct series *s, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[512];
    size_t cap = 0;
    memset(s, 0, sizeof *s);
    if (f == NULL)
        die("%s: cannot open", path);
    if (!fgets(line, sizeof line, f) || strcmp(line, csv_header) != 0)
        die("%s: not a CSV written by " PROG, path);
    /* A last line without its newline is a run still being written. */
    while (fgets(line, sizeof line, f) && strchr(line, '\n') != NULL) {
        struct row w;
        size_t frame;
        if (sscanf(line, "%zu,%f,%f,%f,%f,%f,%f,%f,%u", &frame, &w.psnr,
                   &w.drift, &w.lf_drift, &w.flicker_out, &w.flicker_anchor,
                   &w.static_fraction, &w.session_drift, &w.resets) != 9)
            die("%s: bad line %zu", path, s->n + 2);
        if (s->n == cap) {
            cap = cap ? 2 * cap : 4096;
            struct row *p = realloc(s->rows, cap * sizeof *p);
            if (p == NULL)
                die("out of memory");
            s->rows = p;
        }
        s->rows[s->n++] = w;
    }
    fclose(f);
}

/* ---- Summary ------------------------------------------------------- */

struct summary {
    double drift_mean, drift_first, drift_last, drift_ratio, drift_max;
    double drift_slope; /* Levels per 10,000 frames, least squares. */
    double psnr_mean, psnr_min, lf_mean;
    double flicker_out, flicker_anchor, flicker_ratio, static_fraction;
    size_t window, nonfinite;
    unsigned resets;
};

static int finite_row(const struct row *w)
{
    return isfinite(w->psnr) && isfinite(w->drift) && isfinite(w->lf_drift) &&
           isfinite(w->flicker_out) && isfinite(w->flicker_anchor);
}

static double window_mean(const struct series *s, size_t from, size_t n)
{
    double sum = 0;
    for (size_t i = from; i < from + n; i++)
        sum += s->rows[i].drift;
    return sum / (double)n;
}

static void summarize(const struct series *s, long long window,
                      struct summary *m)
{
    double n = (double)s->n, sx = 0, sxx = 0, sxy = 0, sy = 0;
    double fo = 0, fa = 0, st = 0;
    memset(m, 0, sizeof *m);
    m->window = (size_t)window < s->n ? (size_t)window : s->n;
    m->psnr_min = INFINITY;
    for (size_t i = 0; i < s->n; i++) {
        const struct row *w = &s->rows[i];
        m->nonfinite += !finite_row(w);
        sy += w->drift;
        sx += (double)i;
        sxx += (double)i * i;
        sxy += (double)i * w->drift;
        m->drift_max = w->drift > m->drift_max ? w->drift : m->drift_max;
        m->psnr_mean += w->psnr / n;
        m->psnr_min = w->psnr < m->psnr_min ? w->psnr : m->psnr_min;
        m->lf_mean += w->lf_drift / n;
        /* Flicker: pooled over every static pixel of the run. */
        fo += (double)w->flicker_out * w->static_fraction;
        fa += (double)w->flicker_anchor * w->static_fraction;
        st += w->static_fraction;
    }
    m->drift_mean = sy / n;
    double den = n * sxx - sx * sx;
    m->drift_slope = den > 0 ? (n * sxy - sx * sy) / den * 10000.0 : 0;
    m->drift_first = window_mean(s, 0, m->window);
    m->drift_last = window_mean(s, s->n - m->window, m->window);
    m->drift_ratio = m->drift_first > 0  ? m->drift_last / m->drift_first
                     : m->drift_last > 0 ? INFINITY
                                         : 1.0;
    m->flicker_out = st > 0 ? fo / st : 0;
    m->flicker_anchor = st > 0 ? fa / st : 0;
    m->flicker_ratio = m->flicker_anchor > 0
                           ? m->flicker_out / m->flicker_anchor
                       : m->flicker_out > 0 ? INFINITY
                                            : 0.0;
    m->static_fraction = s->n > 1 ? st / (n - 1) : 0;
    m->resets = s->n ? s->rows[s->n - 1].resets : 0;
}

static int bounds_hold(const struct summary *m)
{
    return m->nonfinite == 0 &&
           m->drift_last <= BOUND_DRIFT_RATIO * m->drift_first &&
           m->flicker_out <= BOUND_FLICKER_RATIO * m->flicker_anchor;
}

static void print_measures(const struct summary *m, size_t frames);

static void print_summary(const struct run *r, const struct summary *m)
{
    const struct options *o = r->o;
    struct nf_temporal_stats st;
    nf_temporal_get_stats(r->t, &st);
    printf("model: %s (%s)\n", nf_model_name(r->model), o->model);
    printf("backend: %s\n", nf_backend_name(r->b));
    printf("input: %s %dx%d\n", o->input, r->in.info->width,
           r->in.info->height);
    printf("correction: %s\n", o->correct ? "on" : "off");
    printf("frames: %zu\n", r->s.n);
    printf("elapsed: %.1f s\n", r->elapsed);
    printf("speed: %.1f frames/s\n", r->s.n / r->elapsed);
    print_measures(m, r->s.n);
    printf("anchors: %llu\n", (unsigned long long)st.anchors);
    printf("resets_drift: %llu\n", (unsigned long long)st.resets_drift);
    printf("resets_scene: %llu\n", (unsigned long long)st.resets_scene);
    printf("offset_mean: %.4f levels\n", st.offset_abs);
    printf("bounds: %s\n", bounds_hold(m) ? "hold" : "FAIL");
}

/* The lines every summary has, from the measures alone. */
static void print_measures(const struct summary *m, size_t frames)
{
    if (m->window * 10 > frames + 9)
        printf("note: the windows cover %zu of %zu frames\n", m->window,
               frames);
    printf("window: %zu frames\n", m->window);
    printf("drift_mean: %.4f levels\n", m->drift_mean);
    printf("drift_first_window: %.4f levels\n", m->drift_first);
    printf("drift_last_window: %.4f levels\n", m->drift_last);
    printf("drift_ratio: %.4f (bound %.2f)\n", m->drift_ratio,
           BOUND_DRIFT_RATIO);
    printf("drift_max: %.4f levels\n", m->drift_max);
    printf("drift_slope: %.4f levels per 10000 frames\n", m->drift_slope);
    printf("lf_drift_mean: %.4f levels\n", m->lf_mean);
    printf("psnr_mean: %.3f dB\n", m->psnr_mean);
    printf("psnr_min: %.3f dB\n", m->psnr_min);
    printf("flicker_out: %.4f levels\n", m->flicker_out);
    printf("flicker_anchor: %.4f levels\n", m->flicker_anchor);
    printf("flicker_ratio: %.4f (bound %.2f)\n", m->flicker_ratio,
           BOUND_FLICKER_RATIO);
    printf("static_fraction: %.4f\n", m->static_fraction);
    printf("resets_total: %u\n", m->resets);
    printf("nonfinite: %zu\n", m->nonfinite);
}

/* ---- SVG plot ------------------------------------------------------ */

#define SVG_W   960
#define PANEL_H 220
#define LEFT    70
#define RIGHT   190
#define TOP     70

struct panel {
    const char *title, *unit;
    int y0; /* Top of the plot area. */
    double lo, hi, frames;
};

/* A "nice" step for about n ticks over span. */
static double nice_step(double span, int n)
{
    double raw = span / n, p = pow(10, floor(log10(raw)));
    double m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static double px_x(const struct panel *p, double frame)
{
    return LEFT + (SVG_W - LEFT - RIGHT) * frame / p->frames;
}

static double px_y(const struct panel *p, double v)
{
    double f = (v - p->lo) / (p->hi - p->lo);
    return p->y0 + PANEL_H * (1 - (f < 0 ? 0 : f > 1 ? 1 : f));
}

static void svg_axes(FILE *f, const struct panel *p)
{
    double pw = SVG_W - LEFT - RIGHT;
    fprintf(f, "<text x='%d' y='%d' class='t'>%s</text>\n", LEFT, p->y0 - 8,
            p->title);
    fprintf(f,
            "<rect x='%d' y='%d' width='%.0f' height='%d' fill='none' "
            "stroke='#888'/>\n",
            LEFT, p->y0, pw, PANEL_H);
    double ys = nice_step(p->hi - p->lo, 5);
    for (double v = ceil(p->lo / ys) * ys; v <= p->hi + 1e-9; v += ys) {
        double y = px_y(p, v);
        fprintf(f,
                "<line x1='%d' x2='%.1f' y1='%.1f' y2='%.1f' "
                "stroke='#ddd'/><text x='%d' y='%.1f' class='yl'>%g</text>\n",
                LEFT, LEFT + pw, y, y, LEFT - 6, y + 4, v);
    }
    double xs = nice_step(p->frames, 8);
    for (double v = 0; v <= p->frames + 1e-9; v += xs)
        fprintf(f, "<text x='%.1f' y='%d' class='xl'>%g</text>\n", px_x(p, v),
                p->y0 + PANEL_H + 16, v);
    fprintf(f,
            "<text x='%d' y='%d' class='ax' transform='rotate(-90 %d %d)'>"
            "%s</text>\n",
            16, p->y0 + PANEL_H / 2, 16, p->y0 + PANEL_H / 2, p->unit);
    fprintf(f, "<text x='%.0f' y='%d' class='xl'>frame</text>\n", LEFT + pw / 2,
            p->y0 + PANEL_H + 32);
}

/* Field k of a row: 0 drift, 1 psnr, 2 flicker_out, 3 flicker_anchor. */
static double field(const struct row *w, int k)
{
    switch (k) {
    case 0:
        return w->drift;
    case 1:
        return w->psnr;
    case 2:
        return w->flicker_out;
    default:
        return w->flicker_anchor;
    }
}

/*
 * Bin means of field k (flicker weighted by the static pixels, like the
 * summary): one point per bin, at most PLOT_BINS.
 */
static void svg_series(FILE *f, const struct panel *p, const struct series *s,
                       int k, const char *color, const char *dash)
{
    size_t bins = s->n > PLOT_BINS ? PLOT_BINS : s->n;
    fprintf(f,
            "<polyline fill='none' stroke='%s' stroke-width='1.5'%s "
            "points='",
            color, dash);
    /* cppcheck-suppress knownConditionTrueFalse ; s->n may be above 0. */
    for (size_t b = 0; b < bins; b++) {
        size_t i0 = b * s->n / bins, i1 = (b + 1) * s->n / bins;
        double sum = 0, wsum = 0;
        for (size_t i = i0; i < i1; i++) {
            double wt = k >= 2 ? s->rows[i].static_fraction : 1.0;
            sum += wt * field(&s->rows[i], k);
            wsum += wt;
        }
        double v = wsum > 0 ? sum / wsum : 0;
        fprintf(f, "%.1f,%.1f ", px_x(p, 0.5 * (double)(i0 + i1)), px_y(p, v));
    }
    fprintf(f, "'/>\n");
}

static void svg_legend(FILE *f, const struct panel *p, int row,
                       const char *color, const char *dash, const char *text)
{
    int x = SVG_W - RIGHT + 12, y = p->y0 + 12 + 18 * row;
    fprintf(f,
            "<line x1='%d' x2='%d' y1='%d' y2='%d' stroke='%s' "
            "stroke-width='2'%s/><text x='%d' y='%d' class='lg'>%s</text>\n",
            x, x + 22, y, y, color, dash, x + 28, y + 4, text);
}

/* Upper end of an axis for field k over the series (with headroom). */
static double series_max(const struct series *s, int k)
{
    double m = 0;
    size_t bins = s->n > PLOT_BINS ? PLOT_BINS : s->n;
    /* cppcheck-suppress knownConditionTrueFalse ; s->n may be above 0. */
    for (size_t b = 0; b < bins; b++) {
        size_t i0 = b * s->n / bins, i1 = (b + 1) * s->n / bins;
        double sum = 0, wsum = 0;
        for (size_t i = i0; i < i1; i++) {
            double wt = k >= 2 ? s->rows[i].static_fraction : 1.0;
            sum += wt * field(&s->rows[i], k);
            wsum += wt;
        }
        if (wsum > 0 && sum / wsum > m)
            m = sum / wsum;
    }
    return m;
}

/* what: the run in the title, e.g. "model default, 320x240". */
static void svg_write(const struct options *o, const char *what,
                      const struct series *s, const struct summary *m,
                      const struct series *cmp, const char *path)
{
    const char *me = o->label     ? o->label
                     : o->correct ? "with correction"
                                  : "without correction";
    const char *other = o->compare_label ? o->compare_label : "compared run";
    FILE *f = fopen(path, "w");
    if (f == NULL)
        die("%s: cannot write", path);
    double frames = (double)(cmp && cmp->n > s->n ? cmp->n : s->n);
    struct panel p[3] = {
        {"Drift: mean |output - anchor| (lower is better)", "levels (0-255)",
         TOP, 0, 1, frames},
        {"Fidelity: PSNR of output vs anchor (higher is better)", "dB",
         TOP + PANEL_H + 70, 0, 1, frames},
        {"Flicker on static pixels (lower is better)", "levels per frame",
         TOP + 2 * (PANEL_H + 70), 0, 1, frames},
    };
    int fields[3][2] = {{0, 0}, {1, 1}, {2, 3}};
    for (int k = 0; k < 3; k++) {
        double hi = series_max(s, fields[k][0]);
        double hi2 = series_max(s, fields[k][1]);
        hi = hi2 > hi ? hi2 : hi;
        if (cmp != NULL && series_max(cmp, fields[k][0]) > hi)
            hi = series_max(cmp, fields[k][0]);
        p[k].hi = hi > 0 ? hi * 1.15 : 1;
    }
    int height = TOP + 3 * (PANEL_H + 70);
    fprintf(f,
            "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
            "viewBox='0 0 %d %d' font-family='sans-serif' font-size='12'>\n"
            "<style>.t{font-weight:bold;font-size:13px}.yl{text-anchor:end}"
            ".xl{text-anchor:middle}.ax{text-anchor:middle}</style>\n"
            "<rect width='100%%' height='100%%' fill='white'/>\n",
            SVG_W, height, SVG_W, height);
    fprintf(f,
            "<text x='%d' y='24' class='t' font-size='15'>nf-eval: %s, %zu "
            "frames, %s</text>\n",
            LEFT, what, s->n, me);
    fprintf(f,
            "<text x='%d' y='44'>drift first/last %zu frames: %.3f / %.3f "
            "levels (ratio %.3f, bound %.2f); flicker output/anchor %.3f / "
            "%.3f (ratio %.3f, bound %.2f)</text>\n",
            LEFT, m->window, m->drift_first, m->drift_last, m->drift_ratio,
            BOUND_DRIFT_RATIO, m->flicker_out, m->flicker_anchor,
            m->flicker_ratio, BOUND_FLICKER_RATIO);
    for (int k = 0; k < 3; k++) {
        svg_axes(f, &p[k]);
        if (cmp != NULL) {
            svg_series(f, &p[k], cmp, fields[k][0], "#d62728", "");
            svg_legend(f, &p[k], 2, "#d62728", "", other);
        }
        if (k == 2) {
            svg_series(f, &p[k], s, 3, "#7f7f7f", " stroke-dasharray='4 3'");
            svg_legend(f, &p[k], 1, "#7f7f7f", " stroke-dasharray='4 3'",
                       "anchor (per frame)");
        }
        svg_series(f, &p[k], s, fields[k][0], "#1f77b4", "");
        svg_legend(f, &p[k], 0, "#1f77b4", "", me);
    }
    fprintf(f, "</svg>\n");
    if (fclose(f) != 0)
        die("%s: write failed", path);
}

/* --from-csv: the summary and the plot of a run written earlier. */
static int replot(const struct options *o, struct series *cmp)
{
    struct series s;
    struct summary m;
    csv_read(&s, o->from_csv);
    if (s.n == 0)
        die("%s: no rows", o->from_csv);
    summarize(&s, o->window ? o->window : (long long)s.n / 10, &m);
    svg_write(o, o->from_csv, &s, &m, o->compare ? cmp : NULL, o->plot);
    printf("input: %s\n", o->from_csv);
    print_measures(&m, s.n);
    int ok = bounds_hold(&m);
    free(s.rows);
    free(cmp->rows);
    return o->check && !ok ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct options o;
    struct run r;
    struct summary m;
    struct series cmp = {0, NULL};

    nf_cli_omp_passive(argv);
    parse(&o, argc, argv);
    if (o.compare != NULL)
        csv_read(&cmp, o.compare);
    if (o.from_csv != NULL)
        return replot(&o, &cmp);
    run_open(&r, &o);
    run_all(&r);
    summarize(&r.s, o.window, &m);
    char what[128];
    snprintf(what, sizeof what, "model %s, %dx%d", nf_model_name(r.model),
             r.in.info->width, r.in.info->height);
    svg_write(&o, what, &r.s, &m, o.compare ? &cmp : NULL, o.plot);
    print_summary(&r, &m);
    int ok = bounds_hold(&m);
    run_close(&r);
    free(cmp.rows);
    return o.check && !ok ? 1 : 0;
}
