/* test_cuda_train.c — the training loop on the GPU: the loss falls, a run
 * repeats itself bit for bit, stop + --resume on the GPU continues the same
 * curve bit for bit, and a GPU run resumes on the CPU (the curve continues). */
#include <unistd.h>

#include "test_cuda.h"
#include "test_train_util.h"

static char tmp[256];

static void make_tmp(void) {
    if (tmp[0]) return;
    snprintf(tmp, sizeof tmp, "/tmp/swax_test_cuda_train_XXXXXX");
    SWAX_ASSERT(mkdtemp(tmp));
    char d[300];
    snprintf(d, sizeof d, "%s/data", tmp);
    test_make_shards(d, 64);
}

static void opts(SwaxTrainOptions *o, const char *name, const char *device) {
    char data[300], out[400];
    snprintf(data, sizeof data, "%s/data", tmp);
    snprintf(out, sizeof out, "%s/%s", tmp, name);
    test_small_opts(o, data, out);
    snprintf(o->device, sizeof o->device, "%s", device);
}

TEST(gpu_training_loss_falls_and_repeats_bit_for_bit) {
    make_tmp();
    SwaxTrainOptions o;
    double a[64], b[64];
    opts(&o, "bf16_a", "cuda");
    CHECKF(swax_train_run(&o) == 0, "%s", swax_last_error());
    opts(&o, "bf16_b", "cuda");
    CHECKF(swax_train_run(&o) == 0, "%s", swax_last_error());
    CHECK(test_read_losses(o.out, b, 64) == 40);
    opts(&o, "bf16_a", "cuda");
    CHECK(test_read_losses(o.out, a, 64) == 40);
    for (int i = 0; i < 40; i++) CHECKF(a[i] == b[i], "step %d: %.9g vs %.9g", i + 1, a[i], b[i]);
    const double first = (a[0] + a[1] + a[2]) / 3, last = (a[37] + a[38] + a[39]) / 3;
    printf("  bf16: loss %.4f -> %.4f over 40 steps\n", first, last);
    CHECK(last < 0.6 * first);
}

TEST(gpu_resume_is_bit_identical_and_continues_on_the_cpu) {
    make_tmp();
    SwaxTrainOptions o;
    double full[64], res[64], cpu[64];
    opts(&o, "full", "cuda");
    o.steps = 24, o.ckpt_every = 0;
    CHECK(swax_train_run(&o) == 0);
    CHECK(test_read_losses(o.out, full, 64) == 24);
    opts(&o, "resumed", "cuda");
    o.steps = 24, o.ckpt_every = 0, o.stop_after = 11;
    CHECK(swax_train_run(&o) == 0);
    o.stop_after = 0, o.resume = 1;
    CHECKF(swax_train_run(&o) == 0, "%s", swax_last_error());
    CHECK(test_read_losses(o.out, res, 64) == 24);
    for (int i = 0; i < 24; i++) CHECKF(full[i] == res[i], "step %d: %.9g vs %.9g", i + 1, full[i], res[i]);
    /* stopped on the GPU at 11, continued on the CPU: the same curve within bf16's reach */
    opts(&o, "to_cpu", "cuda");
    o.steps = 24, o.ckpt_every = 0, o.stop_after = 11;
    CHECK(swax_train_run(&o) == 0);
    o.stop_after = 0, o.resume = 1;
    snprintf(o.device, sizeof o.device, "cpu");
    CHECKF(swax_train_run(&o) == 0, "%s", swax_last_error());
    CHECK(test_read_losses(o.out, cpu, 64) == 24);
    for (int i = 0; i < 11; i++) CHECK(cpu[i] == full[i]);
    double d = 0;
    for (int i = 11; i < 24; i++) d = fabs(cpu[i] - full[i]) / full[i] > d ? fabs(cpu[i] - full[i]) / full[i] : d;
    printf("  GPU run resumed on the CPU: steps 12-24 within %.2e of the GPU-only curve\n", d);
    CHECK(d < 0.05);
}

RUN_CUDA_TESTS()
