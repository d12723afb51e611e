// exit3 exits with code 3.
#include <stdio.h>

int main(void) {
	printf("exiting with 3\n");
	return 3;
}
