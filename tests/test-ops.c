/*
 * test-ops.c - every CPU reference kernel against values computed by hand
 * on tiny tensors (the comments show the arithmetic). These kernels are the
 * oracle for faster backends, so they are checked against first principles
 * and PyTorch's definitions rather than against each other.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cpu/ops.h"
#include "model-impl.h"
#include "nf-test.h"
#include "pad.h"

#define TOL 1e-5

static struct nf_tensor tensor1(float *data, int n)
{
    struct nf_tensor t = {"t", 1, {n}, (size_t)n, data};
    return t;
}

static struct nf_tensor tensor4(float *data, int co, int ci, int kh, int kw)
{
    struct nf_tensor t = {
        "w", 4, {co, ci, kh, kw}, (size_t)co * ci * kh * kw, data};
    return t;
}

static struct nf_node conv_node(const struct nf_tensor *w,
                                const struct nf_tensor *b, int stride,
                                int padding, enum nf_pad_mode mode, int groups)
{
    struct nf_node n = {.op = NF_OP_CONV2D};
    n.weight = w;
    n.bias = b;
    n.kh = (int)w->shape[2];
    n.kw = (int)w->shape[3];
    n.stride = stride;
    n.padding = padding;
    n.pad_mode = mode;
    n.groups = groups;
    return n;
}

static struct nf_cpu_tensor view(float *data, int c, int h, int w)
{
    struct nf_cpu_tensor t = {data, c, h, w};
    return t;
}

/* Runs a conv with a stack workspace. */
static void conv(const struct nf_node *n, const struct nf_cpu_tensor *x,
                 const struct nf_cpu_tensor *y)
{
    float work[1024];
    if (nf__cpu_conv2d_workspace(n, x) > 1024)
        return;
    nf__cpu_conv2d(n, x, y, work);
}

/* in[r][c] = 3 r + c + 1: [[1, 2, 3], [4, 5, 6], [7, 8, 9]]. */
static float in3x3[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

NF_TEST(ops_reflect_index)
{
    NF_CHECK_INT_EQ(nf_reflect_index(-1, 3), 1);
    NF_CHECK_INT_EQ(nf_reflect_index(-2, 3), 2);
    NF_CHECK_INT_EQ(nf_reflect_index(3, 3), 1);
    NF_CHECK_INT_EQ(nf_reflect_index(4, 3), 0);
    NF_CHECK_INT_EQ(nf_reflect_index(0, 3), 0);
    NF_CHECK_INT_EQ(nf_reflect_index(2, 3), 2);
    /* Beyond PyTorch's range (padding >= size) it keeps folding. */
    NF_CHECK_INT_EQ(nf_reflect_index(-3, 3), 1);
    NF_CHECK_INT_EQ(nf_reflect_index(5, 2), 1);
    NF_CHECK_INT_EQ(nf_reflect_index(-1, 1), 0);
    NF_CHECK_INT_EQ(nf_reflect_index(7, 1), 0);
}

NF_TEST(ops_conv2d_zero_padding_and_bias)
{
    /* 3x3 box filter + 0.5: each output is the sum of the in-bounds
     * neighbours, e.g. (0,0) = 1+2+4+5 = 12, (1,1) = 45. */
    float w[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, b[1] = {0.5f}, y[9];
    struct nf_tensor tw = tensor4(w, 1, 1, 3, 3), tb = tensor1(b, 1);
    struct nf_node n = conv_node(&tw, &tb, 1, 1, NF_PAD_ZEROS, 1);
    struct nf_cpu_tensor x = view(in3x3, 1, 3, 3), ty = view(y, 1, 3, 3);
    conv(&n, &x, &ty);
    const float want[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
    for (int i = 0; i < 9; i++)
        NF_CHECK_NEAR(y[i], want[i] + 0.5f, TOL);
}

NF_TEST(ops_conv2d_reflect_padding)
{
    /* Reflect-padded input (row -1 = row 1, column -1 = column 1):
     *   5 4 5 6 5
     *   2 1 2 3 2
     *   5 4 5 6 5
     *   8 7 8 9 8
     *   5 4 5 6 5
     * A single tap at kernel (0, 0) reads xpad[y][x], i.e. in(y-1, x-1);
     * a single tap at (1, 2) reads in(y, x+1). The box sum at (0, 0) is
     * 5+4+5 + 2+1+2 + 5+4+5 = 33. */
    float y[9];
    struct nf_cpu_tensor x = view(in3x3, 1, 3, 3), ty = view(y, 1, 3, 3);

    float w_tl[9] = {1, 0, 0, 0, 0, 0, 0, 0, 0};
    struct nf_tensor t1 = tensor4(w_tl, 1, 1, 3, 3);
    struct nf_node n1 = conv_node(&t1, NULL, 1, 1, NF_PAD_REFLECT, 1);
    conv(&n1, &x, &ty);
    const float want_tl[9] = {5, 4, 5, 2, 1, 2, 5, 4, 5};
    for (int i = 0; i < 9; i++)
        NF_CHECK_NEAR(y[i], want_tl[i], TOL);

    float w_r[9] = {0, 0, 0, 0, 0, 1, 0, 0, 0};
    struct nf_tensor t2 = tensor4(w_r, 1, 1, 3, 3);
    struct nf_node n2 = conv_node(&t2, NULL, 1, 1, NF_PAD_REFLECT, 1);
    conv(&n2, &x, &ty);
    const float want_r[9] = {2, 3, 2, 5, 6, 5, 8, 9, 8};
    for (int i = 0; i < 9; i++)
        NF_CHECK_NEAR(y[i], want_r[i], TOL);

    float w_box[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    struct nf_tensor t3 = tensor4(w_box, 1, 1, 3, 3);
    struct nf_node n3 = conv_node(&t3, NULL, 1, 1, NF_PAD_REFLECT, 1);
    conv(&n3, &x, &ty);
    NF_CHECK_NEAR(y[0], 33, TOL);
    NF_CHECK_NEAR(y[4], 45, TOL);
    /* (2, 2): rows 1, 2, 1 and columns 1, 2, 1 -> 2*(5+6+5) + (8+9+8). */
    NF_CHECK_NEAR(y[8], 2 * (5 + 6 + 5) + (8 + 9 + 8), TOL);
}

NF_TEST(ops_conv2d_stride_2)
{
    /* in[r][c] = 4r + c on 4x4; 3x3 box, padding 1, stride 2: output
     * (oy, ox) sums input rows 2oy-1..2oy+1 and columns 2ox-1..2ox+1:
     * (0,0) = 0+1+4+5 = 10, (0,1) = 1+2+3+5+6+7 = 24,
     * (1,0) = 4+5+8+9+12+13 = 51, (1,1) = 5+6+7+9+10+11+13+14+15 = 90. */
    float in[16], y[4];
    for (int i = 0; i < 16; i++)
        in[i] = (float)i;
    float w[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    struct nf_tensor tw = tensor4(w, 1, 1, 3, 3);
    struct nf_node n = conv_node(&tw, NULL, 2, 1, NF_PAD_ZEROS, 1);
    struct nf_cpu_tensor x = view(in, 1, 4, 4), ty = view(y, 1, 2, 2);
    conv(&n, &x, &ty);
    NF_CHECK_NEAR(y[0], 10, TOL);
    NF_CHECK_NEAR(y[1], 24, TOL);
    NF_CHECK_NEAR(y[2], 51, TOL);
    NF_CHECK_NEAR(y[3], 90, TOL);
}

NF_TEST(ops_conv2d_groups_and_channels)
{
    /* 4 input channels (constant planes 1, 2, 3, 4) on 1x2, 1x1 kernels,
     * groups 2: out0 = 10*in0 + 20*in1 + 1 = 51, out1 = 30*in2 + 40*in3 - 1
     * = 249. A dense conv (groups 1) with w[o][i] = i + 1 mixes all four:
     * out = 1*1 + 2*2 + 3*3 + 4*4 = 30. */
    float in[8] = {1, 1, 2, 2, 3, 3, 4, 4}, y[4];
    float wg[4] = {10, 20, 30, 40}, bg[2] = {1, -1};
    struct nf_tensor tw = tensor4(wg, 2, 2, 1, 1), tb = tensor1(bg, 2);
    struct nf_node n = conv_node(&tw, &tb, 1, 0, NF_PAD_ZEROS, 2);
    struct nf_cpu_tensor x = view(in, 4, 1, 2), ty = view(y, 2, 1, 2);
    conv(&n, &x, &ty);
    NF_CHECK_NEAR(y[0], 51, TOL);
    NF_CHECK_NEAR(y[1], 51, TOL);
    NF_CHECK_NEAR(y[2], 249, TOL);
    NF_CHECK_NEAR(y[3], 249, TOL);

    float wd[8] = {1, 2, 3, 4, 1, 2, 3, 4};
    struct nf_tensor td = tensor4(wd, 2, 4, 1, 1);
    struct nf_node nd = conv_node(&td, NULL, 1, 0, NF_PAD_ZEROS, 1);
    conv(&nd, &x, &ty);
    for (int i = 0; i < 4; i++)
        NF_CHECK_NEAR(y[i], 30, TOL);
}

NF_TEST(ops_activations)
{
    float in[5] = {-2, -0.5f, 0, 0.5f, 2}, y[5];
    struct nf_cpu_tensor x = view(in, 1, 1, 5), ty = view(y, 1, 1, 5);
    struct nf_node n = {.op = NF_OP_RELU};
    nf__cpu_activation(&n, &x, &ty);
    const float relu[5] = {0, 0, 0, 0.5f, 2};
    for (int i = 0; i < 5; i++)
        NF_CHECK_NEAR(y[i], relu[i], 0);

    n.op = NF_OP_LEAKY_RELU;
    n.alpha = 0.1f;
    nf__cpu_activation(&n, &x, &ty);
    const float leaky[5] = {-0.2f, -0.05f, 0, 0.5f, 2};
    for (int i = 0; i < 5; i++)
        NF_CHECK_NEAR(y[i], leaky[i], TOL);

    /* sigmoid(2) = 1 / (1 + e^-2) = 0.8807970780. */
    n.op = NF_OP_SIGMOID;
    nf__cpu_activation(&n, &x, &ty);
    NF_CHECK_NEAR(y[2], 0.5, TOL);
    NF_CHECK_NEAR(y[4], 0.8807970780, TOL);
    NF_CHECK_NEAR(y[0], 1 - 0.8807970780, TOL);

    /* tanh(0.5) = 0.4621171573. */
    n.op = NF_OP_TANH;
    nf__cpu_activation(&n, &x, &ty);
    NF_CHECK_NEAR(y[3], 0.4621171573, TOL);
    NF_CHECK_NEAR(y[1], -0.4621171573, TOL);
    NF_CHECK_NEAR(y[2], 0, 0);

    n.op = NF_OP_CLAMP;
    n.min = -0.5f;
    n.max = 1;
    nf__cpu_activation(&n, &x, &ty);
    const float clamp[5] = {-0.5f, -0.5f, 0, 0.5f, 1};
    for (int i = 0; i < 5; i++)
        NF_CHECK_NEAR(y[i], clamp[i], 0);
}

NF_TEST(ops_elementwise)
{
    float a[4] = {1, 2, 3, 4}, b[4] = {0.5f, -1, 2, 0}, y[4];
    struct nf_cpu_tensor ta = view(a, 2, 1, 2), tb = view(b, 2, 1, 2),
                         ty = view(y, 2, 1, 2);
    nf__cpu_add(&ta, &tb, &ty);
    const float sum[4] = {1.5f, 1, 5, 4};
    for (int i = 0; i < 4; i++)
        NF_CHECK_NEAR(y[i], sum[i], 0);
    nf__cpu_mul(&ta, &tb, &ty);
    const float prod[4] = {0.5f, -2, 6, 0};
    for (int i = 0; i < 4; i++)
        NF_CHECK_NEAR(y[i], prod[i], 0);

    /* Channel 0: x * 2 + 1; channel 1: x * -1 + 0.5. */
    float w[2] = {2, -1}, bias[2] = {1, 0.5f};
    struct nf_tensor tw = tensor1(w, 2), tbias = tensor1(bias, 2);
    struct nf_node n = {.op = NF_OP_SCALE_SHIFT, .weight = &tw, .bias = &tbias};
    nf__cpu_scale_shift(&n, &ta, &ty);
    const float affine[4] = {3, 5, -2.5f, -3.5f};
    for (int i = 0; i < 4; i++)
        NF_CHECK_NEAR(y[i], affine[i], 0);
    /* Without a weight the scale is 1. */
    n.weight = NULL;
    nf__cpu_scale_shift(&n, &ta, &ty);
    NF_CHECK_NEAR(y[3], 4.5f, 0);
}

NF_TEST(ops_concat)
{
    float a[4] = {1, 2, 3, 4}, b[2] = {5, 6}, y[6];
    struct nf_cpu_tensor xs[2] = {view(a, 2, 1, 2), view(b, 1, 1, 2)};
    struct nf_cpu_tensor ty = view(y, 3, 1, 2);
    nf__cpu_concat(xs, 2, &ty);
    for (int i = 0; i < 6; i++)
        NF_CHECK_NEAR(y[i], i + 1, 0);
}

NF_TEST(ops_upsample_nearest)
{
    float in[4] = {1, 2, 3, 4}, y[16];
    struct nf_cpu_tensor x = view(in, 1, 2, 2), ty = view(y, 1, 4, 4);
    nf__cpu_upsample2x_nearest(&x, &ty);
    const float want[16] = {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4};
    for (int i = 0; i < 16; i++)
        NF_CHECK_NEAR(y[i], want[i], 0);
}

NF_TEST(ops_upsample_bilinear_matches_pytorch_formula)
{
    /* align_corners=False: output o reads source s = (o + 0.5) / 2 - 0.5
     * clamped at 0, so along one axis [a, b] becomes
     *   o=0: s=-0.25 -> 0      a
     *   o=1: s=0.25            0.75 a + 0.25 b
     *   o=2: s=0.75            0.25 a + 0.75 b
     *   o=3: s=1.25, i1 = i0   b
     * For [[1, 2], [3, 4]] the rows become [1, 1.25, 1.75, 2] and
     * [3, 3.25, 3.75, 4], then the same weights apply between rows. */
    float in[4] = {1, 2, 3, 4}, y[16];
    struct nf_cpu_tensor x = view(in, 1, 2, 2), ty = view(y, 1, 4, 4);
    nf__cpu_upsample2x_bilinear(&x, &ty);
    const float want[16] = {1,    1.25f, 1.75f, 2,    1.5f, 1.75f, 2.25f, 2.5f,
                            2.5f, 2.75f, 3.25f, 3.5f, 3,    3.25f, 3.75f, 4};
    for (int i = 0; i < 16; i++)
        NF_CHECK_NEAR(y[i], want[i], TOL);

    /* A 1x3 row [0, 4, 8] becomes [0, 1, 3, 5, 7, 8] in both output rows:
     * s = 0.25 -> 0.25*4 = 1, s = 0.75 -> 3, s = 1.25 -> 0.75*4 + 0.25*8
     * = 5, s = 1.75 -> 7, s = 2.25 -> the last column, 8. */
    float row[3] = {0, 4, 8}, y2[12];
    struct nf_cpu_tensor x2 = view(row, 1, 1, 3), ty2 = view(y2, 1, 2, 6);
    nf__cpu_upsample2x_bilinear(&x2, &ty2);
    const float want2[6] = {0, 1, 3, 5, 7, 8};
    for (int i = 0; i < 12; i++)
        NF_CHECK_NEAR(y2[i], want2[i % 6], TOL);
}

NF_TEST(ops_avgpool)
{
    /* in[r][c] = 4r + c: (0+1+4+5)/4 = 2.5, (2+3+6+7)/4 = 4.5, ... */
    float in[16], y[4];
    for (int i = 0; i < 16; i++)
        in[i] = (float)i;
    struct nf_cpu_tensor x = view(in, 1, 4, 4), ty = view(y, 1, 2, 2);
    nf__cpu_avgpool2x2(&x, &ty);
    NF_CHECK_NEAR(y[0], 2.5, 0);
    NF_CHECK_NEAR(y[1], 4.5, 0);
    NF_CHECK_NEAR(y[2], 10.5, 0);
    NF_CHECK_NEAR(y[3], 12.5, 0);
}

NF_TEST(ops_instance_norm)
{
    /* Channel 0 = [1, 2, 3, 4]: mean 2.5, biased variance
     * (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25; with eps 0.75 the scale is
     * 1 / sqrt(2), times weight 2: y = 1 + sqrt(2) * (x - 2.5).
     * Channel 1 is constant, so it normalizes to 0 and y = bias = -1. */
    float in[8] = {1, 2, 3, 4, 5, 5, 5, 5}, y[8];
    float w[2] = {2, 3}, b[2] = {1, -1};
    struct nf_tensor tw = tensor1(w, 2), tb = tensor1(b, 2);
    struct nf_node n = {
        .op = NF_OP_INSTANCE_NORM, .weight = &tw, .bias = &tb, .eps = 0.75f};
    struct nf_cpu_tensor x = view(in, 2, 2, 2), ty = view(y, 2, 2, 2);
    nf__cpu_instance_norm(&n, &x, &ty);
    for (int i = 0; i < 4; i++)
        NF_CHECK_NEAR(y[i], 1 + sqrt(2.0) * (in[i] - 2.5), TOL);
    for (int i = 4; i < 8; i++)
        NF_CHECK_NEAR(y[i], -1, TOL);
    /* Without weight and bias: (x - 2.5) / sqrt(2). */
    n.weight = n.bias = NULL;
    nf__cpu_instance_norm(&n, &x, &ty);
    NF_CHECK_NEAR(y[0], -1.5 / sqrt(2.0), TOL);
}

NF_TEST(ops_pixel_shuffle_channel_order)
{
    /* shuffle: y[c][h*r + i][w*r + j] = x[c*r*r + i*r + j][h][w]. Four
     * channels [1, 2, 3, 4] of 1x1 become [[1, 2], [3, 4]]. */
    float in[4] = {1, 2, 3, 4}, y[4];
    struct nf_cpu_tensor x = view(in, 4, 1, 1), ty = view(y, 1, 2, 2);
    nf__cpu_pixel_shuffle(2, &x, &ty);
    for (int i = 0; i < 4; i++)
        NF_CHECK_NEAR(y[i], in[i], 0);

    /* Eight channels of 1x2, x[k][0][w] = 10k + w, into (2, 2, 4). */
    float in8[16], y8[16], back[16];
    for (int k = 0; k < 8; k++)
        for (int w = 0; w < 2; w++)
            in8[k * 2 + w] = (float)(10 * k + w);
    struct nf_cpu_tensor x8 = view(in8, 8, 1, 2), t8 = view(y8, 2, 2, 4);
    nf__cpu_pixel_shuffle(2, &x8, &t8);
    /* Channel 0, row 0 takes i = 0: x[0], x[1] interleaved over w. */
    const float row00[4] = {0, 10, 1, 11};
    /* Channel 1, row 1 takes c = 1, i = 1: x[6], x[7]. */
    const float row11[4] = {60, 70, 61, 71};
    for (int i = 0; i < 4; i++) {
        NF_CHECK_NEAR(y8[i], row00[i], 0);
        NF_CHECK_NEAR(y8[1 * 8 + 1 * 4 + i], row11[i], 0);
    }

    /* unshuffle is the exact inverse. */
    struct nf_cpu_tensor tb = view(back, 8, 1, 2);
    nf__cpu_pixel_unshuffle(2, &t8, &tb);
    for (int i = 0; i < 16; i++)
        NF_CHECK_NEAR(back[i], in8[i], 0);
}

NF_TEST(ops_pixel_unshuffle_channel_order)
{
    /* (1, 2, 4) -> (4, 1, 2): channel i*2 + j holds x[i][2w + j]. */
    float in[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[8], back[8];
    struct nf_cpu_tensor x = view(in, 1, 2, 4), ty = view(y, 4, 1, 2);
    nf__cpu_pixel_unshuffle(2, &x, &ty);
    const float want[8] = {1, 3, 2, 4, 5, 7, 6, 8};
    for (int i = 0; i < 8; i++)
        NF_CHECK_NEAR(y[i], want[i], 0);
    struct nf_cpu_tensor tb = view(back, 1, 2, 4);
    nf__cpu_pixel_shuffle(2, &ty, &tb);
    for (int i = 0; i < 8; i++)
        NF_CHECK_NEAR(back[i], in[i], 0);
}

NF_TEST(ops_image_conversion)
{
    /* A 2x1 RGB image padded to 3x2: the last column and row repeat. */
    uint8_t px[6] = {0, 51, 255, 10, 20, 30};
    struct nf_image im = {px, 2, 1, 6};
    float planar[18];
    nf__cpu_image_from_rgb(&im, planar, 2, 3);
    /* Red plane: 0, 10, 10 in both rows. */
    NF_CHECK_NEAR(planar[0], 0, 0);
    NF_CHECK_NEAR(planar[1], 10 / 255.0f, 0);
    NF_CHECK_NEAR(planar[2], 10 / 255.0f, 0);
    NF_CHECK_NEAR(planar[5], 10 / 255.0f, 0);
    /* Green (0, 0) = 51 / 255 = 0.2; blue (1, 0) = 1. */
    NF_CHECK_NEAR(planar[6], 0.2f, 0);
    NF_CHECK_NEAR(planar[12 + 3], 1, 0);

    /* Back: clamp, * 255, round half up; the crop keeps 2x1 of 3x2. */
    const float red[6] = {-0.1f, 1.2f, 9, 9, 9, 9};
    const float green[6] = {0.5f, NAN, 9, 9, 9, 9};
    float src[18];
    for (int i = 0; i < 6; i++) {
        src[i] = red[i];
        src[6 + i] = green[i];
        src[12 + i] = 0.25f;
    }
    uint8_t rgb[6] = {0};
    struct nf_image out = {rgb, 2, 1, 6};
    nf__cpu_image_to_rgb(src, 2, 3, &out);
    NF_CHECK_INT_EQ(rgb[0], 0);   /* -0.1 -> 0 */
    NF_CHECK_INT_EQ(rgb[1], 128); /* 0.5 * 255 = 127.5 -> 128 */
    NF_CHECK_INT_EQ(rgb[2], 64);  /* 63.75 -> 64 */
    NF_CHECK_INT_EQ(rgb[3], 255); /* 1.2 -> 1 */
    NF_CHECK_INT_EQ(rgb[4], 0);   /* NaN -> 0 */
    NF_CHECK_INT_EQ(rgb[5], 64);
}

NF_TEST_MAIN(
    NF_TEST_ENTRY(ops_reflect_index)
        NF_TEST_ENTRY(ops_conv2d_zero_padding_and_bias) NF_TEST_ENTRY(
            ops_conv2d_reflect_padding) NF_TEST_ENTRY(ops_conv2d_stride_2)
            NF_TEST_ENTRY(ops_conv2d_groups_and_channels) NF_TEST_ENTRY(
                ops_activations) NF_TEST_ENTRY(ops_elementwise)
                NF_TEST_ENTRY(ops_concat) NF_TEST_ENTRY(ops_upsample_nearest)
                    NF_TEST_ENTRY(ops_upsample_bilinear_matches_pytorch_formula)
                        NF_TEST_ENTRY(ops_avgpool)
                            NF_TEST_ENTRY(ops_instance_norm) NF_TEST_ENTRY(
                                ops_pixel_shuffle_channel_order)
                                NF_TEST_ENTRY(ops_pixel_unshuffle_channel_order)
                                    NF_TEST_ENTRY(ops_image_conversion))
