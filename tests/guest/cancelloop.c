/*
 * cancelloop PATH N: opens, reads and closes PATH N times through the C
 * library's cancellation points, then prints "N opens, B bytes".
 *
 * Built statically against glibc 2.41 or later for arm64 (where open and
 * close call __syscall_cancel with the syscall number in x6:
 * `movz x6, #nr; bl __syscall_cancel`), it is the program on which the
 * rewrite tier's cancel-wrapper promotion is seen live
 * (TestCancelPromotionLive, docs/cancel-wrapper.md). Debian 12's glibc
 * (2.36) and musl (1.2.3) have no such calls; scripts/arm64-vm-test links
 * it against Debian 13's arm64 cross glibc.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: cancelloop PATH N\n");
		return 2;
	}
	int n = atoi(argv[2]);
	char buf[64];
	long total = 0;
	for (int i = 0; i < n; i++) {
		int fd = open(argv[1], O_RDONLY);
		if (fd < 0) {
			perror(argv[1]);
			return 1;
		}
		ssize_t r = read(fd, buf, sizeof buf);
		if (r < 0) {
			perror("read");
			return 1;
		}
		total += r;
		if (close(fd) < 0) {
			perror("close");
			return 1;
		}
	}
	printf("%d opens, %ld bytes\n", n, total);
	return 0;
}
