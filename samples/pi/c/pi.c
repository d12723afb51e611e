/* pi estimates π by Monte Carlo on every worker and sums the hits at rank
 * 0 with messages (a C guest of the same job as samples/pi).
 *
 *   librahost run -n 4 samples/pi/c/pi.c -- 40000000
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "libra.h"

static uint64_t state;

static double next(void) { /* xorshift64*, seeded per rank */
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	return (double)((state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

int main(int argc, char **argv) {
	long long darts = argc > 1 ? atoll(argv[1]) : 20000000;
	int rank = libra_rank(), size = libra_size();
	long long share = darts / size;
	if (rank == size - 1)
		share = darts - share * (size - 1);
	state = 88172645463325252ull + (uint64_t)rank * 7919;
	long long hits = 0;
	for (long long i = 0; i < share; i++) {
		double x = next(), y = next();
		if (x * x + y * y <= 1)
			hits++;
		if ((i & 0xfffff) == 0)
			libra_yield();
	}
	long long mine[2] = {hits, share};
	if (rank != 0) {
		libra_send(0, 7, mine, sizeof mine);
		return 0;
	}
	long long total[2] = {hits, share};
	for (int r = 1; r < size; r++) {
		long long got[2];
		libra_msg_info info;
		if (libra_recv(LIBRA_ANY, 7, got, sizeof got, &info) != 0) {
			fprintf(stderr, "pi: recv failed\n");
			return 1;
		}
		total[0] += got[0];
		total[1] += got[1];
	}
	double est = 4.0 * (double)total[0] / (double)total[1];
	printf("pi ~ %.6f from %lld darts on %d workers\n", est, total[1], size);
	return 0;
}
