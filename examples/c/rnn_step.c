/* One gradient-descent step of the generated RNN, from C alone (libc and libm).
 *
 *     cc -std=c99 -O2 -Igenerated/rnn examples/c/rnn_step.c generated/rnn/rnn.c -lm -o rnn_step
 *     ./rnn_step
 *
 * Every array is the caller's; rnn.h documents their shapes and order.
 */
#include "rnn.h"

#include <stdio.h>
#include <stdlib.h>

enum { I = 3, H = 5, K = 4, T = 6, B = 2, NPARAMS = 5 };

static double uniform(unsigned *seed) {
    *seed = *seed * 1103515245u + 12345u;
    return ((*seed >> 8) & 0xFFFF) / 65536.0 - 0.5;
}

int main(void) {
    const long sizes[] = {I, H, K, T, B}; /* SIZES, then T, then B */
    const size_t counts[NPARAMS] = {I * H, H * H, H, H * K, K}; /* W_xh W_hh b_h W_hy b_y */
    double *params[NPARAMS], *grads[NPARAMS];
    double x[T * B * I], loss_before = 0, loss_after = 0;
    int64_t labels[T * B];
    const double *inputs[] = {x};        /* the inputs, in the header's order: x */
    const int64_t *label_list[] = {labels}; /* the targets given as class labels: z */
    void *workspace = malloc(rnn_workspace_bytes_f64(sizes));
    unsigned seed = 1;
    size_t n, p;
    for (p = 0; p < NPARAMS; ++p) {
        params[p] = malloc(counts[p] * sizeof(double));
        grads[p] = malloc(counts[p] * sizeof(double));
        for (n = 0; n < counts[p]; ++n) params[p][n] = uniform(&seed);
    }
    for (n = 0; n < T * B * I; ++n) x[n] = 2 * uniform(&seed);
    for (n = 0; n < T * B; ++n) labels[n] = (int64_t)(n % K);

    if (rnn_loss_and_grad_f64(sizes, (const double *const *)params, inputs, label_list, NULL,
                              NULL, &loss_before, grads, NULL, workspace) != CHAINRULE_OK) {
        fprintf(stderr, "rnn_loss_and_grad_f64 failed\n");
        return 1;
    }
    for (p = 0; p < NPARAMS; ++p)
        for (n = 0; n < counts[p]; ++n) params[p][n] -= 0.05 * grads[p][n];
    rnn_loss_and_grad_f64(sizes, (const double *const *)params, inputs, label_list, NULL, NULL,
                          &loss_after, grads, NULL, workspace);
    printf("loss %.6f -> %.6f after one step\n", loss_before, loss_after);

    for (p = 0; p < NPARAMS; ++p) {
        free(params[p]);
        free(grads[p]);
    }
    free(workspace);
    return loss_after < loss_before ? 0 : 1;
}
