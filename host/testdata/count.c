// count prints a running hash of a computation; its output depends on
// every step before it, so a wrong restore shows.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "libra.h"

static uint64_t data[1 << 16];

int main(int argc, char **argv) {
	int n = argc > 1 ? atoi(argv[1]) : 3000;
	uint64_t h = 1469598103934665603ull;
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < (1 << 16); j++) {
			h ^= (uint64_t)j + data[j];
			h *= 1099511628211ull;
			data[j] = h;
		}
		libra_yield();
		if (i % 100 == 0)
			printf("step %d %llx\n", i, (unsigned long long)h), fflush(stdout);
	}
	printf("done %llx\n", (unsigned long long)h);
	return 0;
}
