// trapjob: rank 1 traps while the other ranks wait for a message that
// never comes; the job must end with the trap, not hang.
#include <stdio.h>

#include "libra.h"

int main(void) {
	if (libra_rank() == 1) {
		__builtin_trap();
	}
	char buf[8];
	libra_msg_info info;
	libra_recv(LIBRA_ANY, LIBRA_ANY, buf, sizeof buf, &info);
	printf("rank %d got a message\n", libra_rank());
	return 0;
}
