/* hello - minimal guest program: reports its libc, argv and working directory. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char cwd[PATH_MAX];
	int i;
#ifdef __GLIBC__
	printf("hello from glibc\n");
#else
	printf("hello from musl\n");
#endif
	for (i = 0; i < argc; i++)
		printf("argv[%d]=%s\n", i, argv[i]);
	if (getcwd(cwd, sizeof cwd))
		printf("cwd=%s\n", cwd);
	else
		perror("getcwd");
	return 0;
}
