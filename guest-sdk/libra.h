/* libra.h: the librahost guest SDK for C.
 *
 * A program needs no call at all to be checkpointed: every WASI call is a
 * capture point. Long loops that make no WASI call call libra_yield() now
 * and then so that a pending checkpoint is taken promptly.
 */
#ifndef LIBRA_H
#define LIBRA_H

#include <stdint.h>

#define LIBRA_IMPORT(name) __attribute__((import_module("libra"), import_name(name)))

#ifdef __cplusplus
extern "C" {
#endif

/* Matches every source or every tag in libra_recv. */
#define LIBRA_ANY (-1)

/* This worker's rank, 0 <= rank < libra_size(). */
LIBRA_IMPORT("rank") int32_t libra_rank(void);

/* The number of workers in the job. */
LIBRA_IMPORT("size") int32_t libra_size(void);

/* A capture point: a pending checkpoint is taken here. */
LIBRA_IMPORT("yield") void libra_yield(void);

/* Asks for a checkpoint now; returns once the state has been captured. */
LIBRA_IMPORT("checkpoint") void libra_checkpoint(void);

#ifdef __cplusplus
}
#endif

#endif
