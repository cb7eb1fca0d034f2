/*
 * model-template.h - builds and loads a small model in memory for tests:
 * a safetensors header written as a template (' for a JSON quote, ` for a
 * quote inside the nf.graph string) plus n little-endian floats.
 * Header-only, for test files.
 */
#ifndef NF_MODEL_TEMPLATE_H
#define NF_MODEL_TEMPLATE_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "model.h"

static uint8_t file_buf[1 << 14];

/* Builds and loads a model: header template plus n little-endian floats. */
static struct nf_model *load_model(const char *tmpl, const float *data,
                                   size_t n)
{
    size_t len = 8;
    for (; *tmpl && len < sizeof file_buf - 4 * n - 2; tmpl++) {
        if (*tmpl == '`')
            file_buf[len++] = '\\';
        file_buf[len++] = *tmpl == '\'' || *tmpl == '`' ? '"' : (uint8_t)*tmpl;
    }
    for (int i = 0; i < 8; i++)
        file_buf[i] = (uint8_t)((len - 8) >> (8 * i));
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &data[i], 4);
        for (int b = 0; b < 4; b++)
            file_buf[len++] = (uint8_t)(u >> (8 * b));
    }
    char err[512];
    struct nf_model *m = NULL;
    if (nf_model_load_buffer(file_buf, len, "test", &m, err, sizeof err) < 0)
        printf("  load failed: %s\n", err);
    return m;
}

#endif /* NF_MODEL_TEMPLATE_H */
