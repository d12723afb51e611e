// flood sends argv[1] messages of argv[2] bytes to rank 1, message i
// carrying i in its first 8 bytes, and prints a line after each send. With
// nobody acking, its send window fills and it waits in libra_send.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libra.h"

static char buf[1 << 16];

int main(int argc, char **argv) {
	int n = atoi(argv[1]), size = atoi(argv[2]);
	if (size < 8 || size > (int)sizeof buf)
		return 2;
	for (int i = 0; i < n; i++) {
		uint64_t v = (uint64_t)i;
		memcpy(buf, &v, 8);
		if (libra_send(1, 0, buf, size) != 0)
			return 1;
		printf("sent %d\n", i);
		fflush(stdout);
	}
	return 0;
}
