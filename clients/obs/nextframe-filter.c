/*
 * nextframe-filter.c - an OBS Studio video filter that streams its source's
 * frames to a nextframe server and draws the stylized frames it gets back.
 *
 * This file is only the libobs glue; the network, the slots and the pixel
 * work are in exchange.c, which knows nothing of OBS. Every callback here
 * runs on one of OBS's threads, and none of them waits for the network:
 *
 * - video_render (graphics thread): renders the filter's target into a
 *   texture at a capped width, copies it to CPU memory through two staging
 *   surfaces used in turn (this frame is staged while the previous frame's
 *   surface, which the GPU has finished by now, is mapped: no pipeline
 *   stall), hands the pixels to the exchange (newest wins), uploads the
 *   newest result into a texture, and draws it over the source's full
 *   size. Until a result has arrived, or when the newest is older than
 *   STALE_US (the server is gone), it passes the source through.
 * - update (UI thread): new properties go to the exchange, which applies
 *   them on its own thread.
 *
 * It works on every source type because it renders the target itself
 * instead of using filter_video (which only asynchronous sources call).
 */
#include <obs-module.h>

#include <graphics/vec4.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "exchange.h"
#include "mono-clock.h"

OBS_DECLARE_MODULE()

#define FILTER_ID     "nextframe_filter"
#define DEFAULT_URL   "ws://127.0.0.1:8080/v1/stream"
#define DEFAULT_WIDTH 640
#define MIN_WIDTH     64
#define MAX_WIDTH     1920
#define STALE_US      1000000 /* Show no result older than this. */
#define STATS_LOG_S   30

#define S_URL      "url"
#define S_STYLE    "style"
#define S_STRENGTH "strength"
#define S_TOKEN    "token"
#define S_WIDTH    "max_width"

struct nf_filter {
    obs_source_t *source;      /* Borrowed: the filter itself. */
    struct nf_obs_exchange *x; /* Owned. */
    /* Written by update (UI thread), read by video_render. */
    _Atomic float strength;
    atomic_int max_width;
    /* Graphics thread only. */
    gs_texrender_t *texrender; /* The target at the capped size. */
    gs_stagesurf_t *stage[2];
    int staged[2];         /* stage[i] holds a frame not yet read. */
    uint64_t staged_us[2]; /* When it was rendered. */
    int next_stage;        /* The surface this frame stages into. */
    int frame_pending;     /* video_tick ran: capture once. */
    gs_texture_t *result;  /* Newest result, RGBA. */
    uint64_t result_us;    /* When it arrived (nf_mono_us). */
    /* Time spent in video_render, logged every STATS_LOG_S. */
    uint64_t render_us_sum;
    uint64_t render_us_max;
    uint64_t renders;
    uint64_t results_drawn;
    uint64_t next_log_us;
};

static void log_line(void *user, int level, const char *line)
{
    struct nf_filter *f = user;

    blog(level == NF_OBS_LOG_WARN ? LOG_WARNING : LOG_INFO,
         "[nextframe] '%s': %s", obs_source_get_name(f->source), line);
}

static const char *filter_name(void *unused)
{
    (void)unused;
    return "nextframe";
}

/* Reads the properties into s and the filter's atomics. */
static void read_settings(struct nf_filter *f, obs_data_t *settings,
                          struct nf_obs_settings *s)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->url, sizeof(s->url), "%s",
             obs_data_get_string(settings, S_URL));
    snprintf(s->style, sizeof(s->style), "%s",
             obs_data_get_string(settings, S_STYLE));
    snprintf(s->token, sizeof(s->token), "%s",
             obs_data_get_string(settings, S_TOKEN));
    s->strength = (float)obs_data_get_double(settings, S_STRENGTH);
    atomic_store(&f->strength, s->strength);
    atomic_store(&f->max_width, (int)obs_data_get_int(settings, S_WIDTH));
}

static void filter_update(void *data, obs_data_t *settings)
{
    struct nf_filter *f = data;
    struct nf_obs_settings s;

    read_settings(f, settings, &s);
    nf_obs_exchange_set(f->x, &s);
}

static void *filter_create(obs_data_t *settings, obs_source_t *source)
{
    struct nf_filter *f = bzalloc(sizeof(*f));
    struct nf_obs_exchange_config cfg = {0};

    f->source = source;
    read_settings(f, settings, &cfg.settings);
    cfg.stats_log_s = STATS_LOG_S;
    cfg.log = log_line;
    cfg.log_user = f;
    if (nf_obs_exchange_init(&f->x, &cfg) < 0) {
        blog(LOG_ERROR, "[nextframe] cannot start the network thread");
        bfree(f);
        return NULL;
    }
    return f;
}

static void filter_destroy(void *data)
{
    struct nf_filter *f = data;

    obs_enter_graphics();
    gs_texrender_destroy(f->texrender);
    gs_stagesurface_destroy(f->stage[0]);
    gs_stagesurface_destroy(f->stage[1]);
    gs_texture_destroy(f->result);
    obs_leave_graphics();
    nf_obs_exchange_free(f->x); /* Joins the network thread. */
    bfree(f);
}

static void filter_defaults(obs_data_t *settings)
{
    obs_data_set_default_string(settings, S_URL, DEFAULT_URL);
    obs_data_set_default_string(settings, S_STYLE, "");
    obs_data_set_default_double(settings, S_STRENGTH, 1.0);
    obs_data_set_default_string(settings, S_TOKEN, "");
    obs_data_set_default_int(settings, S_WIDTH, DEFAULT_WIDTH);
}

static obs_properties_t *filter_properties(void *data)
{
    obs_properties_t *props = obs_properties_create();
    obs_property_t *p;

    (void)data;
    p = obs_properties_add_text(props, S_URL, "Server URL", OBS_TEXT_DEFAULT);
    obs_property_set_long_description(
        p, "The nextframe server's stream endpoint, ws://HOST:PORT/v1/stream");
    p = obs_properties_add_text(props, S_STYLE, "Style", OBS_TEXT_DEFAULT);
    obs_property_set_long_description(
        p, "A style the server offers (its log and the OBS log list them); "
           "empty: the server's default");
    obs_properties_add_float_slider(props, S_STRENGTH, "Strength", 0.0, 1.0,
                                    0.01);
    obs_properties_add_text(props, S_TOKEN, "Token", OBS_TEXT_PASSWORD);
    p = obs_properties_add_int_slider(props, S_WIDTH, "Max width sent (px)",
                                      MIN_WIDTH, MAX_WIDTH, 16);
    obs_property_set_long_description(
        p, "Frames wider than this are scaled down before they are sent; "
           "the result is drawn at the source's full size");
    return props;
}

static void filter_tick(void *data, float seconds)
{
    struct nf_filter *f = data;

    (void)seconds;
    f->frame_pending = 1;
}

/* The size frames are sent at: w x h scaled to at most max_width wide. */
static void capped_size(const struct nf_filter *f, uint32_t w, uint32_t h,
                        uint32_t *cw, uint32_t *ch)
{
    uint32_t cap = (uint32_t)atomic_load(&f->max_width);

    if (cap < MIN_WIDTH || cap > MAX_WIDTH)
        cap = DEFAULT_WIDTH;
    *cw = w < cap ? w : cap;
    *ch = (uint32_t)(((uint64_t)h * *cw + w / 2) / w);
    if (*ch < 1)
        *ch = 1;
}

/* Renders target (w x h) into f->texrender at cw x ch. */
static int render_target(struct nf_filter *f, obs_source_t *target, uint32_t w,
                         uint32_t h, uint32_t cw, uint32_t ch)
{
    struct vec4 clear;

    if (f->texrender == NULL)
        f->texrender = gs_texrender_create(GS_RGBA, GS_ZS_NONE);
    if (f->texrender == NULL)
        return -1;
    gs_texrender_reset(f->texrender);
    if (!gs_texrender_begin(f->texrender, cw, ch))
        return -1;
    vec4_zero(&clear);
    gs_clear(GS_CLEAR_COLOR, &clear, 0.0f, 0);
    /* The source's own coordinates, squeezed into the smaller target. */
    gs_ortho(0.0f, (float)w, 0.0f, (float)h, -100.0f, 100.0f);
    gs_blend_state_push();
    gs_blend_function(GS_BLEND_ONE, GS_BLEND_ZERO);
    obs_source_video_render(target);
    gs_blend_state_pop();
    gs_texrender_end(f->texrender);
    return 0;
}

/* Copies the staged surface i (staged a frame ago) to the exchange. */
static void read_stage(struct nf_filter *f, int i)
{
    gs_stagesurf_t *s = f->stage[i];
    uint32_t w = gs_stagesurface_get_width(s);
    uint32_t h = gs_stagesurface_get_height(s);
    struct nf_obs_image *img;
    uint8_t *data;
    uint32_t linesize;

    f->staged[i] = 0;
    if (!gs_stagesurface_map(s, &data, &linesize))
        return;
    img = nf_obs_exchange_frame_acquire(f->x, (int)w, (int)h, NF_OBS_RGBA);
    if (img != NULL) {
        for (uint32_t y = 0; y < h; y++)
            memcpy(img->data + (size_t)y * (size_t)img->stride,
                   data + (size_t)y * linesize, (size_t)w * 4);
        img->stamp_us = f->staged_us[i];
    }
    gs_stagesurface_unmap(s);
    if (img != NULL)
        nf_obs_exchange_frame_submit(f->x, img);
}

/*
 * Captures this frame of target for the server. The previous frame's
 * staging surface is read first; this frame goes into the other one.
 */
static void capture(struct nf_filter *f, obs_source_t *target, uint32_t w,
                    uint32_t h)
{
    int i = f->next_stage, prev = i ^ 1;
    uint32_t cw, ch;

    if (f->staged[prev])
        read_stage(f, prev);
    capped_size(f, w, h, &cw, &ch);
    if (render_target(f, target, w, h, cw, ch) < 0)
        return;
    if (f->stage[i] != NULL &&
        (gs_stagesurface_get_width(f->stage[i]) != cw ||
         gs_stagesurface_get_height(f->stage[i]) != ch)) {
        gs_stagesurface_destroy(f->stage[i]);
        f->stage[i] = NULL;
    }
    if (f->stage[i] == NULL)
        f->stage[i] = gs_stagesurface_create(cw, ch, GS_RGBA);
    if (f->stage[i] == NULL)
        return;
    gs_stage_texture(f->stage[i], gs_texrender_get_texture(f->texrender));
    f->staged[i] = 1;
    f->staged_us[i] = nf_mono_us();
    f->next_stage = prev;
}

/* Uploads the newest result, if a new one came, into f->result. */
static void upload_result(struct nf_filter *f)
{
    struct nf_obs_image *img = nf_obs_exchange_result_take(f->x);

    if (img == NULL)
        return;
    if (f->result != NULL &&
        (gs_texture_get_width(f->result) != (uint32_t)img->width ||
         gs_texture_get_height(f->result) != (uint32_t)img->height)) {
        gs_texture_destroy(f->result);
        f->result = NULL;
    }
    if (f->result == NULL)
        f->result =
            gs_texture_create((uint32_t)img->width, (uint32_t)img->height,
                              GS_RGBA, 1, NULL, GS_DYNAMIC);
    if (f->result != NULL) {
        gs_texture_set_image(f->result, img->data, (uint32_t)img->stride,
                             false);
        f->result_us = img->stamp_us;
    }
    nf_obs_exchange_result_release(f->x, img);
}

/* Draws f->result stretched over w x h, as image sources draw (sRGB). */
static void draw_result(struct nf_filter *f, uint32_t w, uint32_t h)
{
    gs_effect_t *effect = obs_get_base_effect(OBS_EFFECT_DEFAULT);
    gs_eparam_t *image = gs_effect_get_param_by_name(effect, "image");
    const bool was_srgb = gs_framebuffer_srgb_enabled();

    gs_enable_framebuffer_srgb(true);
    gs_blend_state_push();
    gs_blend_function(GS_BLEND_ONE, GS_BLEND_INVSRCALPHA);
    gs_effect_set_texture_srgb(image, f->result);
    while (gs_effect_loop(effect, "Draw"))
        gs_draw_sprite(f->result, 0, w, h);
    gs_blend_state_pop();
    gs_enable_framebuffer_srgb(was_srgb);
}

/* Logs how long video_render took, so its cost is visible in OBS's log. */
static void account(struct nf_filter *f, uint64_t t0, int drew)
{
    uint64_t now = nf_mono_us(), us = now - t0;

    f->render_us_sum += us;
    f->render_us_max = us > f->render_us_max ? us : f->render_us_max;
    f->renders++;
    f->results_drawn += (uint64_t)drew;
    if (f->next_log_us == 0)
        f->next_log_us = now + (uint64_t)STATS_LOG_S * 1000000;
    if (now < f->next_log_us)
        return;
    blog(LOG_INFO,
         "[nextframe] '%s': video_render: %llu calls, %llu drew a result, "
         "mean %.2f ms, max %.2f ms",
         obs_source_get_name(f->source), (unsigned long long)f->renders,
         (unsigned long long)f->results_drawn,
         (double)f->render_us_sum / (double)f->renders / 1000.0,
         (double)f->render_us_max / 1000.0);
    f->render_us_sum = f->render_us_max = f->renders = f->results_drawn = 0;
    f->next_log_us = now + (uint64_t)STATS_LOG_S * 1000000;
}

static void filter_render(void *data, gs_effect_t *unused)
{
    struct nf_filter *f = data;
    uint64_t t0 = nf_mono_us();
    int drew = 0;
    obs_source_t *target = obs_filter_get_target(f->source);
    uint32_t w = target != NULL ? obs_source_get_base_width(target) : 0;
    uint32_t h = target != NULL ? obs_source_get_base_height(target) : 0;

    (void)unused;
    if (w == 0 || h == 0 || !(atomic_load(&f->strength) > 0.0f)) {
        obs_source_skip_video_filter(f->source);
        return;
    }
    /* A source shown in several views renders more than once a frame. */
    if (f->frame_pending) {
        f->frame_pending = 0;
        capture(f, target, w, h);
    }
    upload_result(f);
    if (f->result != NULL && nf_mono_us() - f->result_us < STALE_US) {
        draw_result(f, w, h);
        drew = 1;
    } else {
        obs_source_skip_video_filter(f->source);
    }
    account(f, t0, drew);
}

static struct obs_source_info nextframe_filter = {
    .id = FILTER_ID,
    .type = OBS_SOURCE_TYPE_FILTER,
    .output_flags = OBS_SOURCE_VIDEO | OBS_SOURCE_SRGB,
    .get_name = filter_name,
    .create = filter_create,
    .destroy = filter_destroy,
    .update = filter_update,
    .get_defaults = filter_defaults,
    .get_properties = filter_properties,
    .video_tick = filter_tick,
    .video_render = filter_render,
};

MODULE_EXPORT const char *obs_module_description(void)
{
    return "Streams a source's frames to a nextframe server and shows the "
           "stylized frames it returns";
}

bool obs_module_load(void)
{
    obs_register_source(&nextframe_filter);
    blog(LOG_INFO, "[nextframe] filter '%s' registered", FILTER_ID);
    return true;
}
