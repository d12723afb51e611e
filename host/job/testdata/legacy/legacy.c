// legacy prints a running hash and asks for checkpoints of its own: the
// state directory of a single run made by an earlier release
// (host/job/testdata/legacy-run) comes from it.
#include <stdint.h>
#include <stdio.h>

#include "libra.h"

int main(void) {
	uint64_t h = 1469598103934665603ull;
	for (int i = 0; i < 60; i++) {
		h = (h ^ (uint64_t)i) * 1099511628211ull;
		printf("step %d %llx\n", i, (unsigned long long)h);
		fflush(stdout);
		if (i == 10 || i == 20)
			libra_checkpoint();
	}
	printf("done %llx\n", (unsigned long long)h);
	return 0;
}
