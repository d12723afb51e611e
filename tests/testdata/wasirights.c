// wasirights exercises wasi-libc's file calls under librahost's WASI
// rights: ordinary use works, a call without its right fails with
// ENOTCAPABLE. The directory to work in is argv[1] (a mount).
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi/api.h>

static const char *dir;

static const char *p(const char *name) {
	static char buf[2][256];
	static int i;
	i ^= 1;
	snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
	return buf[i];
}

static void check(const char *what, int r) {
	printf("%s: %s\n", what, r < 0 ? strerror(errno) : "ok");
}

static void wasi(const char *what, __wasi_errno_t e) {
	errno = e;
	printf("%s: %s\n", what, e ? strerror(errno) : "ok");
}

int main(int argc, char **argv) {
	char buf[64];
	dir = argv[1];

	FILE *f = fopen(p("a.txt"), "w");
	check("fopen w", f ? 0 : -1);
	fputs("hello world", f);
	check("fclose", fclose(f));
	f = fopen(p("a.txt"), "r");
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = 0;
	printf("fread: %s\n", buf);
	fclose(f);

	int fd = open(p("a.txt"), O_RDONLY);
	check("write read-only fd", (int)write(fd, "x", 1));
	check("ftruncate read-only fd", ftruncate(fd, 1));
	close(fd);

	fd = open(p("a.txt"), O_RDWR);
	check("pwrite", (int)pwrite(fd, "W", 1, 6));
	check("ftruncate", ftruncate(fd, 7));
	check("lseek", (int)lseek(fd, 0, SEEK_SET));
	__wasi_fdstat_t st;
	(void)__wasi_fd_fdstat_get(fd, &st);
	wasi("drop fd_read", __wasi_fd_fdstat_set_rights(fd, st.fs_rights_base & ~__WASI_RIGHTS_FD_READ,
	                                                 st.fs_rights_inheriting));
	check("read after dropping fd_read", (int)read(fd, buf, 4));
	check("write after dropping fd_read", (int)write(fd, "h", 1));
	wasi("take fd_read back", __wasi_fd_fdstat_set_rights(fd, st.fs_rights_base, st.fs_rights_inheriting));
	close(fd);

	fd = open(p("a.txt"), O_WRONLY | O_TRUNC);
	check("open O_TRUNC", fd);
	check("write", (int)write(fd, "new", 3));
	close(fd);
	struct stat sb;
	check("stat", stat(p("a.txt"), &sb));
	printf("size: %lld\n", (long long)sb.st_size);

	check("mkdir", mkdir(p("d"), 0755));
	check("rename", rename(p("a.txt"), p("d/b.txt")));
	check("symlink", symlink("b.txt", p("d/link")));
	check("symlink absolute", symlink("/etc/passwd", p("d/abs")));
	DIR *dp = opendir(p("d"));
	check("opendir", dp ? 0 : -1);
	int entries = 0;
	for (struct dirent *de; (de = readdir(dp));) {
		entries++;
	}
	closedir(dp);
	printf("entries: %d\n", entries);

	// A directory that cannot pass on fd_write: wasi-libc asks for the
	// rights it can get, so a file opens below it but cannot be written.
	int dfd = open(p("d"), O_RDONLY | O_DIRECTORY);
	(void)__wasi_fd_fdstat_get(dfd, &st);
	wasi("drop inherited fd_write",
	     __wasi_fd_fdstat_set_rights(dfd, st.fs_rights_base, st.fs_rights_inheriting & ~__WASI_RIGHTS_FD_WRITE));
	fd = openat(dfd, "b.txt", O_WRONLY);
	check("openat for writing", fd);
	check("write below it", (int)write(fd, "x", 1));
	close(fd);
	fd = openat(dfd, "b.txt", O_RDONLY);
	check("openat for reading", fd);
	n = read(fd, buf, sizeof buf - 1);
	buf[n] = 0;
	printf("read: %s\n", buf);
	close(fd);

	check("shutdown file", shutdown(dfd, SHUT_RDWR));
	check("shutdown bad fd", shutdown(99, SHUT_RDWR));

	// fd_renumber onto a descriptor that is open (here the directory),
	// and onto one that is not.
	fd = open(p("d/b.txt"), O_RDONLY);
	wasi("renumber onto open fd", __wasi_fd_renumber(fd, dfd));
	n = read(dfd, buf, sizeof buf - 1);
	buf[n] = 0;
	printf("read renumbered: %s\n", buf);
	wasi("renumber onto closed fd", __wasi_fd_renumber(dfd, 200));
	close(dfd);

	check("unlink", unlink(p("d/link")));
	check("unlink", unlink(p("d/b.txt")));
	check("rmdir", rmdir(p("d")));
	return 0;
}
