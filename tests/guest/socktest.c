/*
 * socktest - AF_UNIX socket probe for kbox guest tests.
 *
 * Usage:
 *   socktest dgram PATH        bind a SOCK_DGRAM socket at PATH; from a second
 *                              socket: sendto(PATH) "a", sendmsg(msg_name=PATH,
 *                              iovecs "b","c"), sendmmsg("d","e" to PATH),
 *                              connect(PATH) + send "f"; receive everything
 *   socktest stream PATH       bind+listen a SOCK_STREAM at PATH, a child
 *                              connects and writes "hello", the parent
 *                              accepts and reads; then connect to PATH.missing
 *                              (ENOENT) and to /etc/hostname (ECONNREFUSED)
 *   socktest names PATH        getsockname/getpeername of sockets bound and
 *                              connected at PATH report PATH
 *   socktest peercred PATH     SO_PEERCRED of an accepted connection names
 *                              the connecting process
 *   socktest rights PATH       pass an O_RDONLY descriptor of PATH with
 *                              SCM_RIGHTS over a socketpair and read from it
 *   socktest abstract          bind/sendto/receive in the abstract namespace
 *   socktest relative          chdir /tmp, bind "rel.sock", stat
 *                              /tmp/rel.sock, sendto "rel.sock"
 *   socktest sendto PATH TEXT  send one datagram to PATH
 *   socktest families          socket() of AF_UNIX, AF_INET, AF_INET6,
 *                              AF_NETLINK (NETLINK_ROUTE), AF_PACKET,
 *                              AF_VSOCK; socketpair() of AF_UNIX, AF_INET
 *   socktest bench KIND N      N round trips of one byte, timed (ns/op):
 *                              udp-addr (recvfrom with an address on UDP
 *                              loopback), udp-noaddr (without), udp-msg
 *                              (recvmsg), unix-addr (AF_UNIX datagrams,
 *                              recvfrom with an address)
 *   socktest abshost NAME      stream connect to abstract NAME, and send a
 *                              datagram to abstract NAME-d (a host
 *                              listener's names: both must fail)
 *   socktest abspair NAME      a parent listens on abstract NAME (stream)
 *                              and NAME-d (dgram); a child connects and
 *                              writes, then autobinds a datagram socket and
 *                              sends to NAME-d; the parent replies to the
 *                              address recvfrom gave it; names printed
 *
 * Every step prints one line, "<step>: ok [value]" or "<step>: err ENAME".
 * Data is printed with bytes outside 0x21..0x7e escaped as \xNN.  The exit
 * status is 0 unless the usage is wrong (2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const struct {
	int val;
	const char *name;
} errnames[] = {
#define E(x) { x, #x }
	E(EPERM), E(ENOENT), E(ESRCH), E(EINTR), E(EIO), E(ENXIO), E(E2BIG), E(ENOEXEC),
	E(EBADF), E(ECHILD), E(EAGAIN), E(ENOMEM), E(EACCES), E(EFAULT), E(EBUSY),
	E(EEXIST), E(EXDEV), E(ENODEV), E(ENOTDIR), E(EISDIR), E(EINVAL), E(ENFILE),
	E(EMFILE), E(ENOTTY), E(ETXTBSY), E(EFBIG), E(ENOSPC), E(ESPIPE), E(EROFS),
	E(EMLINK), E(EPIPE), E(ERANGE), E(EDEADLK), E(ENAMETOOLONG), E(ENOSYS),
	E(ENOTEMPTY), E(ELOOP), E(EOVERFLOW), E(ENOTSOCK), E(EDESTADDRREQ), E(EMSGSIZE),
	E(EPROTOTYPE), E(ENOPROTOOPT), E(EPROTONOSUPPORT), E(EOPNOTSUPP),
	E(EAFNOSUPPORT), E(EADDRINUSE), E(EADDRNOTAVAIL), E(ECONNABORTED),
	E(ECONNRESET), E(ENOBUFS), E(EISCONN), E(ENOTCONN), E(ETOOMANYREFS),
	E(ETIMEDOUT), E(ECONNREFUSED), E(EALREADY), E(EINPROGRESS),
#undef E
};

static const char *errname(int e)
{
	static char buf[32];
	size_t i;
	for (i = 0; i < sizeof errnames / sizeof errnames[0]; i++)
		if (errnames[i].val == e)
			return errnames[i].name;
	snprintf(buf, sizeof buf, "E%d", e);
	return buf;
}

/* step result: rc < 0 prints "err ENAME" (from errno), else "ok" + text */
static void report(const char *step, long rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(const char *step, long rc, const char *fmt, ...)
{
	if (rc < 0) {
		printf("%s: err %s\n", step, errname(errno));
	} else {
		printf("%s: ok", step);
		if (fmt && *fmt) {
			va_list ap;
			va_start(ap, fmt);
			putchar(' ');
			vprintf(fmt, ap);
			va_end(ap);
		}
		putchar('\n');
	}
	fflush(stdout);
}

/* escape data for printing */
static const char *esc(const char *d, size_t n)
{
	static char out[4 * 4096 + 1];
	size_t i, o = 0;
	for (i = 0; i < n && o + 5 < sizeof out; i++) {
		unsigned char c = (unsigned char)d[i];
		if (c > 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", c);
	}
	out[o] = '\0';
	return out;
}

static socklen_t mkaddr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa->sun_path) {
		fprintf(stderr, "socktest: path too long: %s\n", path);
		exit(2);
	}
	strcpy(sa->sun_path, path);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
}

/* the path of a returned address, "(unnamed)" or "@name" for abstract */
static const char *addrname(const struct sockaddr_un *sa, socklen_t len)
{
	static char buf[sizeof sa->sun_path + 2];
	size_t n;
	if (len <= offsetof(struct sockaddr_un, sun_path))
		return "(unnamed)";
	n = len - offsetof(struct sockaddr_un, sun_path);
	if (n > sizeof sa->sun_path)
		n = sizeof sa->sun_path;
	if (sa->sun_path[0] == '\0') {
		buf[0] = '@';
		memcpy(buf + 1, sa->sun_path + 1, n - 1);
		buf[n] = '\0';
		return buf;
	}
	memcpy(buf, sa->sun_path, n);
	buf[n] = '\0';
	return buf;
}

/* receive every pending datagram (non-blocking) and print each */
static void drain(int fd, const char *step, int expect)
{
	char buf[256];
	int got = 0;
	for (;;) {
		/* Wait for the expected ones, then only take what is already there. */
		ssize_t n = recv(fd, buf, sizeof buf, got < expect ? 0 : MSG_DONTWAIT);
		if (n < 0) {
			if (got < expect || (errno != EAGAIN && errno != EWOULDBLOCK))
				report(step, -1, NULL);
			return;
		}
		report(step, n, "%s", esc(buf, (size_t)n));
		got++;
	}
}

static void set_rcvtimeo(int fd)
{
	struct timeval tv = { 5, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

static int cmd_dgram(const char *path)
{
	struct sockaddr_un sa;
	socklen_t len = mkaddr(&sa, path);
	int srv, cli, expect = 0;
	long rc;

	srv = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	report("socket", srv, NULL);
	if (srv < 0)
		return 0;
	set_rcvtimeo(srv);
	rc = bind(srv, (struct sockaddr *)&sa, len);
	report("bind", rc, NULL);
	if (rc < 0)
		return 0;
	cli = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	rc = sendto(cli, "a", 1, 0, (struct sockaddr *)&sa, len);
	report("sendto", rc, "%ld", rc);
	expect += rc > 0;

	{
		struct iovec iov[2] = { { (void *)"b", 1 }, { (void *)"c", 1 } };
		struct msghdr mh;
		memset(&mh, 0, sizeof mh);
		mh.msg_name = &sa;
		mh.msg_namelen = len;
		mh.msg_iov = iov;
		mh.msg_iovlen = 2;
		rc = sendmsg(cli, &mh, 0);
		report("sendmsg", rc, "%ld", rc);
		expect += rc > 0;
	}
	{
		struct iovec iov[2] = { { (void *)"d", 1 }, { (void *)"e", 1 } };
		struct mmsghdr mm[2];
		int i;
		memset(mm, 0, sizeof mm);
		for (i = 0; i < 2; i++) {
			mm[i].msg_hdr.msg_name = &sa;
			mm[i].msg_hdr.msg_namelen = len;
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
			mm[i].msg_len = 99;
		}
		rc = sendmmsg(cli, mm, 2, 0);
		report("sendmmsg", rc, "%ld len=%u,%u", rc, mm[0].msg_len, mm[1].msg_len);
		expect += rc > 0 ? (int)rc : 0;
	}
	rc = connect(cli, (struct sockaddr *)&sa, len);
	report("connect", rc, NULL);
	if (rc == 0) {
		rc = send(cli, "f", 1, 0);
		report("send", rc, "%ld", rc);
		expect += rc > 0;
	}
	drain(srv, "recv", expect);
	return 0;
}

static int cmd_stream(const char *path)
{
	struct sockaddr_un sa, sb;
	socklen_t len = mkaddr(&sa, path), lb;
	char missing[sizeof sa.sun_path];
	int srv, c, st;
	pid_t pid;
	long rc;

	srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	report("socket", srv, NULL);
	if (srv < 0)
		return 0;
	rc = bind(srv, (struct sockaddr *)&sa, len);
	report("bind", rc, NULL);
	if (rc < 0)
		return 0;
	rc = listen(srv, 4);
	report("listen", rc, NULL);
	if (rc < 0)
		return 0;
	pid = fork();
	if (pid < 0) {
		report("fork", -1, NULL);
		return 0;
	}
	if (pid == 0) {
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		rc = connect(s, (struct sockaddr *)&sa, len);
		report("child-connect", rc, NULL);
		if (rc == 0) {
			rc = write(s, "hello", 5);
			report("child-write", rc, "%ld", rc);
		}
		_exit(0);
	}
	/* The child prints first: wait for it before printing anything. */
	c = accept4(srv, NULL, NULL, SOCK_CLOEXEC);
	{
		int e = errno;
		waitpid(pid, &st, 0);
		errno = e;
	}
	report("accept", c, NULL);
	if (c >= 0) {
		char buf[64];
		size_t got = 0;
		ssize_t n;
		while (got < sizeof buf && (n = read(c, buf + got, sizeof buf - got)) > 0)
			got += (size_t)n;
		report("read", (long)got, "%s", esc(buf, got));
		close(c);
	}

	snprintf(missing, sizeof missing, "%s.missing", path);
	c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	lb = mkaddr(&sb, missing);
	report("connect-missing", connect(c, (struct sockaddr *)&sb, lb), NULL);
	close(c);
	c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	lb = mkaddr(&sb, "/etc/hostname");
	report("connect-file", connect(c, (struct sockaddr *)&sb, lb), NULL);
	close(c);
	/* bind on an existing path: EADDRINUSE */
	c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	report("bind-again", bind(c, (struct sockaddr *)&sa, len), NULL);
	close(c);
	return 0;
}

static int cmd_names(const char *path)
{
	struct sockaddr_un sa, got;
	socklen_t len = mkaddr(&sa, path), gl;
	int srv, cli, acc;
	long rc;

	srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	rc = bind(srv, (struct sockaddr *)&sa, len);
	report("bind", rc, NULL);
	if (rc < 0)
		return 0;
	listen(srv, 4);
	gl = sizeof got;
	rc = getsockname(srv, (struct sockaddr *)&got, &gl);
	report("getsockname", rc, "%s", addrname(&got, gl));
	cli = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	rc = connect(cli, (struct sockaddr *)&sa, len);
	report("connect", rc, NULL);
	if (rc < 0)
		return 0;
	gl = sizeof got;
	rc = getpeername(cli, (struct sockaddr *)&got, &gl);
	report("getpeername", rc, "%s", addrname(&got, gl));
	gl = sizeof got;
	acc = accept4(srv, (struct sockaddr *)&got, &gl, SOCK_CLOEXEC);
	report("accept", acc, "%s", addrname(&got, gl));
	if (acc >= 0) {
		gl = sizeof got;
		rc = getsockname(acc, (struct sockaddr *)&got, &gl);
		report("getsockname-accepted", rc, "%s", addrname(&got, gl));
	}
	return 0;
}

static int cmd_peercred(const char *path)
{
	struct sockaddr_un sa;
	socklen_t len = mkaddr(&sa, path);
	int srv, acc, st;
	pid_t pid;
	long rc;

	srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	rc = bind(srv, (struct sockaddr *)&sa, len);
	report("bind", rc, NULL);
	if (rc < 0)
		return 0;
	listen(srv, 4);
	pid = fork();
	if (pid < 0) {
		report("fork", -1, NULL);
		return 0;
	}
	if (pid == 0) {
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		char c;
		if (connect(s, (struct sockaddr *)&sa, len) == 0)
			(void)read(s, &c, 1); /* stay alive until the parent has looked */
		_exit(0);
	}
	acc = accept4(srv, NULL, NULL, SOCK_CLOEXEC);
	report("accept", acc, NULL);
	if (acc >= 0) {
		struct ucred cr;
		socklen_t cl = sizeof cr;
		memset(&cr, 0, sizeof cr);
		rc = getsockopt(acc, SOL_SOCKET, SO_PEERCRED, &cr, &cl);
		report("peercred", rc, "pid=%s uid=%s gid=%s", cr.pid == pid ? "child" : "other",
		       cr.uid == getuid() ? "self" : "other", cr.gid == getgid() ? "self" : "other");
		close(acc);
	}
	waitpid(pid, &st, 0);
	return 0;
}

static int cmd_rights(const char *path)
{
	int sv[2], fd, recvd = -1;
	long rc;
	char buf[4096];
	ssize_t n;

	rc = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	report("socketpair", rc, NULL);
	if (rc < 0)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	report("open", fd, NULL);
	if (fd < 0)
		return 0;
	{
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} ctl;
		struct iovec iov = { (void *)"R", 1 };
		struct msghdr mh;
		struct cmsghdr *cm;
		memset(&mh, 0, sizeof mh);
		memset(&ctl, 0, sizeof ctl);
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = ctl.b;
		mh.msg_controllen = sizeof ctl.b;
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof fd);
		rc = sendmsg(sv[0], &mh, 0);
		report("sendmsg", rc, "%ld", rc);

		/* a descriptor the process does not have */
		{
			int bad = 987;
			memcpy(CMSG_DATA(cm), &bad, sizeof bad);
			rc = sendmsg(sv[0], &mh, 0);
			report("sendmsg-badfd", rc, "%ld", rc);
		}
	}
	{
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(4 * sizeof(int))];
		} ctl;
		struct iovec iov;
		struct msghdr mh;
		struct cmsghdr *cm;
		char data[8];
		int nfds = 0;
		memset(&mh, 0, sizeof mh);
		iov.iov_base = data;
		iov.iov_len = 1; /* one byte: one message's worth */
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = ctl.b;
		mh.msg_controllen = sizeof ctl.b;
		rc = recvmsg(sv[1], &mh, MSG_CMSG_CLOEXEC);
		if (rc >= 0)
			for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
				if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
					nfds += (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
					memcpy(&recvd, CMSG_DATA(cm), sizeof recvd);
				}
		report("recvmsg", rc, "%ld %s fds=%d", rc, esc(data, rc > 0 ? (size_t)rc : 0), nfds);
	}
	if (recvd < 0)
		return 0;
	{
		struct stat a, b;
		fstat(fd, &a);
		fstat(recvd, &b);
		report("same-file", 0, "%s", a.st_dev == b.st_dev && a.st_ino == b.st_ino ? "yes" : "no");
	}
	n = read(recvd, buf, sizeof buf);
	if (n < 0) {
		report("read", -1, NULL);
		return 0;
	}
	{
		char *nl = memchr(buf, '\n', (size_t)n);
		report("read", 0, "%s", esc(buf, nl ? (size_t)(nl - buf) : (size_t)n));
	}
	/* SCM_RIGHTS passes the open file description: the offset is shared */
	{
		off_t off = lseek(fd, 0, SEEK_CUR);
		report("offset-shared", (long)off, "%s", off == n ? "yes" : "no");
	}
	return 0;
}

static int cmd_abstract(void)
{
	struct sockaddr_un sa, got;
	socklen_t len, gl;
	char name[64];
	int srv, cli;
	long rc;

	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	snprintf(name, sizeof name, "kbox-socktest-%d-%d", (int)getpid(), rand());
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, name, strlen(name));
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));

	srv = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	set_rcvtimeo(srv);
	rc = bind(srv, (struct sockaddr *)&sa, len);
	report("bind", rc, NULL);
	if (rc < 0)
		return 0;
	gl = sizeof got;
	rc = getsockname(srv, (struct sockaddr *)&got, &gl);
	report("getsockname", rc, "%s", gl == len && memcmp(&got, &sa, len) == 0 ? "same" : "different");
	cli = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	rc = sendto(cli, "abs", 3, 0, (struct sockaddr *)&sa, len);
	report("sendto", rc, "%ld", rc);
	{
		struct iovec iov = { (void *)"msg", 3 };
		struct msghdr mh;
		memset(&mh, 0, sizeof mh);
		mh.msg_name = &sa;
		mh.msg_namelen = len;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		rc = sendmsg(cli, &mh, 0);
		report("sendmsg", rc, "%ld", rc);
	}
	drain(srv, "recv", 2);
	return 0;
}

static int cmd_relative(void)
{
	struct sockaddr_un sa;
	socklen_t len;
	struct stat st;
	int srv, cli;
	long rc;

	rc = chdir("/tmp");
	report("chdir", rc, NULL);
	if (rc < 0)
		return 0;
	len = mkaddr(&sa, "rel.sock");
	srv = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	set_rcvtimeo(srv);
	rc = bind(srv, (struct sockaddr *)&sa, len);
	report("bind", rc, NULL);
	if (rc < 0)
		return 0;
	rc = stat("/tmp/rel.sock", &st);
	report("stat", rc, "%s", S_ISSOCK(st.st_mode) ? "sock" : "other");
	cli = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	rc = sendto(cli, "rel", 3, 0, (struct sockaddr *)&sa, len);
	report("sendto", rc, "%ld", rc);
	{
		struct sockaddr_un sb;
		socklen_t lb = mkaddr(&sb, "./../tmp/rel.sock");
		rc = sendto(cli, "dot", 3, 0, (struct sockaddr *)&sb, lb);
		report("sendto-dotdot", rc, "%ld", rc);
	}
	drain(srv, "recv", 2);
	return 0;
}

static int cmd_sendto(const char *path, const char *text)
{
	struct sockaddr_un sa;
	socklen_t len = mkaddr(&sa, path);
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	long rc = sendto(s, text, strlen(text), 0, (struct sockaddr *)&sa, len);
	report("sendto", rc, "%ld", rc);
	return 0;
}

static socklen_t absaddr(struct sockaddr_un *sa, const char *name)
{
	size_t n = strlen(name);
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if (n + 1 > sizeof sa->sun_path) {
		fprintf(stderr, "socktest: name too long\n");
		exit(2);
	}
	memcpy(sa->sun_path + 1, name, n);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

static int cmd_abshost(const char *name)
{
	struct sockaddr_un sa;
	socklen_t len = absaddr(&sa, name);
	char dname[128];
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	long rc = connect(s, (struct sockaddr *)&sa, len);
	report("connect", rc, NULL);
	snprintf(dname, sizeof dname, "%s-d", name);
	len = absaddr(&sa, dname);
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	rc = sendto(s, "leak", 4, 0, (struct sockaddr *)&sa, len);
	report("sendto", rc, "%ld", rc);
	return 0;
}

/* name of a socket: getsockname (peer 0) or getpeername */
static const char *sockname(int fd, int peer)
{
	struct sockaddr_un got;
	socklen_t gl = sizeof got;
	int rc = peer ? getpeername(fd, (struct sockaddr *)&got, &gl) : getsockname(fd, (struct sockaddr *)&got, &gl);
	if (rc < 0)
		return errname(errno);
	return addrname(&got, gl);
}

static int cmd_abspair(const char *name)
{
	struct sockaddr_un sa, sd, from;
	socklen_t len = absaddr(&sa, name), dlen, fl;
	char dname[128], buf[64];
	int l, d, c, status;
	long rc;
	pid_t pid;

	snprintf(dname, sizeof dname, "%s-d", name);
	dlen = absaddr(&sd, dname);
	l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	rc = bind(l, (struct sockaddr *)&sa, len);
	report("bind", rc, NULL);
	if (rc < 0 || listen(l, 4) < 0)
		return 0;
	d = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	set_rcvtimeo(d);
	rc = bind(d, (struct sockaddr *)&sd, dlen);
	report("bind-dgram", rc, NULL);
	printf("getsockname: ok %s\n", sockname(l, 0));
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		static const struct sockaddr_un fam = { .sun_family = AF_UNIX };
		struct sockaddr_un sc;
		char cname[128];
		snprintf(cname, sizeof cname, "%s-c", name);
		rc = bind(s, (struct sockaddr *)&sc, absaddr(&sc, cname));
		report("child-bind", rc, NULL);
		rc = connect(s, (struct sockaddr *)&sa, len);
		report("child-connect", rc, NULL);
		printf("child-getpeername: ok %s\n", sockname(s, 1));
		rc = write(s, "hello", 5);
		report("child-write", rc, "%ld", rc);
		close(s);
		s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		set_rcvtimeo(s);
		rc = bind(s, (const struct sockaddr *)&fam, sizeof fam.sun_family);
		report("child-autobind", rc, NULL);
		printf("child-autobind-name: ok %s\n", sockname(s, 0));
		rc = sendto(s, "ping", 4, 0, (struct sockaddr *)&sd, dlen);
		report("child-sendto", rc, "%ld", rc);
		rc = sendto(s, "ping2", 5, 0, (struct sockaddr *)&sd, dlen);
		report("child-sendto", rc, "%ld", rc);
		rc = recv(s, buf, sizeof buf, 0);
		report("child-reply", rc, "%s", rc > 0 ? esc(buf, (size_t)rc) : "");
		fflush(stdout);
		_exit(0);
	}
	fl = sizeof from;
	c = accept(l, (struct sockaddr *)&from, &fl);
	report("accept", c, "%s", addrname(&from, fl));
	if (c >= 0) {
		printf("getsockname-accepted: ok %s\n", sockname(c, 0));
		rc = read(c, buf, sizeof buf);
		report("read", rc, "%s", rc > 0 ? esc(buf, (size_t)rc) : "");
	}
	fl = sizeof from;
	rc = recvfrom(d, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
	report("recvfrom", rc, "%s from %s", rc > 0 ? esc(buf, (size_t)rc) : "", addrname(&from, fl));
	{
		struct sockaddr_un from2;
		struct iovec iov = { buf, sizeof buf };
		struct msghdr mh;
		memset(&mh, 0, sizeof mh);
		mh.msg_name = &from2;
		mh.msg_namelen = sizeof from2;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		rc = recvmsg(d, &mh, 0);
		report("recvmsg", rc, "%s from %s", rc > 0 ? esc(buf, (size_t)rc) : "", addrname(&from2, mh.msg_namelen));
	}
	if (fl > 0) {
		rc = sendto(d, "pong", 4, 0, (struct sockaddr *)&from, fl);
		report("reply", rc, "%ld", rc);
	}
	fflush(stdout);
	waitpid(pid, &status, 0);
	return 0;
}

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static int cmd_families(void)
{
	static const struct {
		int fam, type, proto;
		const char *name;
	} f[] = {
		{ AF_UNIX, SOCK_STREAM, 0, "AF_UNIX" },
		{ AF_INET, SOCK_STREAM, 0, "AF_INET" },
		{ AF_INET6, SOCK_DGRAM, 0, "AF_INET6" },
		{ AF_NETLINK, SOCK_RAW, 0, "AF_NETLINK" },
		{ AF_PACKET, SOCK_DGRAM, 0, "AF_PACKET" },
		{ AF_VSOCK, SOCK_STREAM, 0, "AF_VSOCK" },
	};
	char step[64];
	int sv[2];
	size_t i;
	long rc;
	for (i = 0; i < sizeof f / sizeof f[0]; i++) {
		snprintf(step, sizeof step, "socket %s", f[i].name);
		rc = socket(f[i].fam, f[i].type | SOCK_CLOEXEC, f[i].proto);
		report(step, rc, NULL);
		if (rc >= 0)
			close((int)rc);
	}
	rc = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	report("socketpair AF_UNIX", rc, NULL);
	rc = socketpair(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	report("socketpair AF_INET", rc, NULL);
	return 0;
}

#include <netinet/in.h>
#include <arpa/inet.h>

static int cmd_bench(const char *kind, int n)
{
	int a, b, i, sv[2];
	struct sockaddr_storage from;
	socklen_t fl;
	struct timespec t0, t1;
	char c = 'x';
	if (strncmp(kind, "unix", 4) == 0) {
		if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) < 0)
			return 1;
		a = sv[0];
		b = sv[1];
	} else {
		struct sockaddr_in sa;
		socklen_t sl = sizeof sa;
		memset(&sa, 0, sizeof sa);
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a = socket(AF_INET, SOCK_DGRAM, 0);
		b = socket(AF_INET, SOCK_DGRAM, 0);
		if (a < 0 || b < 0 || bind(a, (struct sockaddr *)&sa, sizeof sa) < 0 ||
		    getsockname(a, (struct sockaddr *)&sa, &sl) < 0 || connect(b, (struct sockaddr *)&sa, sizeof sa) < 0)
			return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++) {
		if (send(b, &c, 1, 0) != 1)
			return 1;
		fl = sizeof from;
		if (strcmp(kind, "udp-noaddr") == 0) {
			if (recvfrom(a, &c, 1, 0, NULL, NULL) != 1)
				return 1;
		} else if (strcmp(kind, "udp-msg") == 0) {
			struct iovec iov = { &c, 1 };
			struct msghdr mh;
			memset(&mh, 0, sizeof mh);
			mh.msg_name = &from;
			mh.msg_namelen = fl;
			mh.msg_iov = &iov;
			mh.msg_iovlen = 1;
			if (recvmsg(a, &mh, 0) != 1)
				return 1;
		} else if (recvfrom(a, &c, 1, 0, (struct sockaddr *)&from, &fl) != 1)
			return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("bench %s: %.0f ns/op\n", kind,
	       ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / n);
	return 0;
}

static void usage(void)
{
	fputs("usage: socktest dgram PATH | stream PATH | names PATH | peercred PATH | rights PATH |\n"
	      "       abstract | relative | sendto PATH TEXT | families | bench KIND N | abshost NAME | abspair NAME\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (strcmp(argv[1], "dgram") == 0 && argc == 3)
		return cmd_dgram(argv[2]);
	if (strcmp(argv[1], "stream") == 0 && argc == 3)
		return cmd_stream(argv[2]);
	if (strcmp(argv[1], "names") == 0 && argc == 3)
		return cmd_names(argv[2]);
	if (strcmp(argv[1], "peercred") == 0 && argc == 3)
		return cmd_peercred(argv[2]);
	if (strcmp(argv[1], "rights") == 0 && argc == 3)
		return cmd_rights(argv[2]);
	if (strcmp(argv[1], "abstract") == 0 && argc == 2)
		return cmd_abstract();
	if (strcmp(argv[1], "relative") == 0 && argc == 2)
		return cmd_relative();
	if (strcmp(argv[1], "bench") == 0 && argc == 4)
		return cmd_bench(argv[2], atoi(argv[3]));
	if (strcmp(argv[1], "families") == 0 && argc == 2)
		return cmd_families();
	if (strcmp(argv[1], "abshost") == 0 && argc == 3)
		return cmd_abshost(argv[2]);
	if (strcmp(argv[1], "abspair") == 0 && argc == 3)
		return cmd_abspair(argv[2]);
	if (strcmp(argv[1], "sendto") == 0 && argc == 4)
		return cmd_sendto(argv[2], argv[3]);
	usage();
	return 2;
}
