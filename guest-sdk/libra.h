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

/* What libra_recv reports of the message it received. */
typedef struct {
	int32_t src; /* the sender's rank */
	int32_t tag; /* the tag it was sent with */
	int32_t len; /* the payload's length (also when it did not fit) */
} libra_msg_info;

/* Sends len bytes at data to rank dst with tag (>= 0). It copies the data
 * and returns 0, or 28 (EINVAL) for a rank that does not exist. */
LIBRA_IMPORT("send") int32_t libra_send(int32_t dst, int32_t tag, const void *data, int32_t len);

/* Waits for a message from src (or LIBRA_ANY) with tag (or LIBRA_ANY),
 * copies its payload into buf and fills info; returns 0. If the payload is
 * longer than cap it returns 1 (E2BIG) with info->len set and keeps the
 * message for the next call. A program waiting here is checkpointed. */
LIBRA_IMPORT("recv") int32_t libra_recv(int32_t src, int32_t tag, void *buf, int32_t cap, libra_msg_info *info);

#ifdef __cplusplus
}
#endif

#endif
